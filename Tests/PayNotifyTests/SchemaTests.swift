import Postgres
import TestSupport
import Testing

@Suite("Schema constraints (migrations/0001_initial.sql)")
struct SchemaTests {
    private static let insertOrder = """
        INSERT INTO orders (id, amount, currency, provider, status, expires_at)
        VALUES ($1, $2, $3, $4, $5, now() + interval '15 minutes')
        """

    /// A well-formed order, event and inbox row are accepted.
    @Test func acceptsAWellFormedOrder() async throws {
        let database = try await TestDatabase.create(migrated: true)
        try await database.withConnection { connection in
            try connection.execute(Self.insertOrder, ["ord_12345678", 1999, "CNY", "sandbox", "pending"])
            try connection.execute(
                "INSERT INTO order_events (order_id, event, data) VALUES ($1, $2, $3::jsonb)",
                ["ord_12345678", "status", #"{"status": "pending"}"#]
            )
            try connection.execute(
                """
                INSERT INTO webhook_inbox (provider, provider_event_id, order_reference, order_id, event_type, outcome, raw_body)
                VALUES ($1, $2, $3, $3, $4, $5, $6)
                """,
                ["sandbox", "evt_1", "ord_12345678", "payment.succeeded", "applied", Array("{}".utf8)]
            )
        }
    }

    /// Each bad order is refused by the constraint that names the rule it breaks.
    @Test(arguments: [
        ("ord_zero_amount", 0, "CNY", "sandbox", "pending", SQLState.checkViolation),
        ("ord_negative", -1, "CNY", "sandbox", "pending", .checkViolation),
        ("ord_lowercase", 100, "cny", "sandbox", "pending", .checkViolation),
        ("ord_longcurrency", 100, "CNYX", "sandbox", "pending", .checkViolation),
        ("ord_badprovider", 100, "CNY", "paypal", "pending", .checkViolation),
        ("ord_badstatus", 100, "CNY", "sandbox", "paid", .checkViolation),
        ("bad id!", 100, "CNY", "sandbox", "pending", .checkViolation),
    ])
    func refusesBadOrders(id: String, amount: Int, currency: String, provider: String, status: String, state: SQLState)
        async throws
    {
        let database = try await TestDatabase.create(migrated: true)
        let error = try await #require(throws: PostgresError.self) {
            try await database.withConnection {
                try $0.execute(Self.insertOrder, [id, amount, currency, provider, status])
            }
        }
        #expect(error.sqlState == state)
    }

    /// The same provider event id is stored once; events need an existing order.
    @Test func inboxIsUniqueAndEventsNeedAnOrder() async throws {
        let database = try await TestDatabase.create(migrated: true)
        let (duplicate, orphan) = try await database.withConnection { connection in
            let insert = """
                INSERT INTO webhook_inbox (provider, provider_event_id, event_type, outcome, raw_body)
                VALUES ('stripe', 'evt_same', 'payment_intent.succeeded', 'unknown_order', '\\x00')
                """
            try connection.execute(insert)
            let duplicate = try #require(throws: PostgresError.self) { try connection.execute(insert) }
            let orphan = try #require(throws: PostgresError.self) {
                try connection.execute(
                    "INSERT INTO order_events (order_id, event, data) VALUES ('ord_missing1', 'status', '{}')"
                )
            }
            return (duplicate, orphan)
        }
        #expect(duplicate.sqlState == .uniqueViolation)
        #expect(orphan.sqlState == .foreignKeyViolation)
    }
}
