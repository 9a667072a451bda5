import EventLog
import Foundation
import Logging
import Postgres
import Storage
import Synchronization
import TestSupport
import Testing

@Suite("Merchant webhook outcomes, recorded together")
struct MerchantWebhookStoreTests {
    /// Attempts to several endpoints, written in one transaction: each message's state follows
    /// its own outcome, each endpoint's health its last one, and each exhausted message and
    /// disabled endpoint raises its alert once committed. A message whose endpoint was deleted
    /// meanwhile is skipped, and the others are still written.
    @Test func aBatchOfOutcomes() async throws {
        let alerts = Mutex<[Alert]>([])
        let database = try await TestDatabase.create(migrated: true)
        let pool = ConnectionPool(
            configuration: .init(connection: database.configuration, maximumConnections: 2),
            logger: Logger(label: "test")
        )
        try await withRunning(pool) { pool in
            do {
                let store = MerchantWebhookStore(pool: pool, onAlert: { alert in alerts.withLock { $0.append(alert) } })
                var endpoints: [String] = []
                for name in ["recovering", "gone", "exhausted", "deleted"] {
                    let endpoint = try await store.createEndpoint(
                        url: "https://\(name).example/hook",
                        events: ["*"],
                        description: name,
                        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                    )
                    endpoints.append(endpoint.id)
                }
                // Two messages for the first endpoint, one for each other.
                for (index, endpoint) in (endpoints + [endpoints[0]]).enumerated() {
                    try await database.withConnection { connection in
                        _ = try connection.execute(
                            """
                            INSERT INTO webhook_messages (id, endpoint_id, event_id, order_id, type, payload)
                            VALUES ('msg_' || md5($1), $2, $3, 'ord_test', 'order.succeeded', '{}')
                            """,
                            [String(index), endpoint, index + 1]
                        )
                    }
                }
                let claimed = try await store.claimDue(limit: 10, perEndpoint: 10, inFlight: [:], lease: .seconds(30))
                #expect(claimed.count == 5)
                func message(_ endpoint: Int, _ nth: Int = 0) throws -> ClaimedMessage {
                    try #require(claimed.filter { $0.endpointID == endpoints[endpoint] }.dropFirst(nth).first)
                }
                func outcome(_ next: AttemptOutcome.Next, _ status: Int?) -> AttemptOutcome {
                    AttemptOutcome(
                        next: next,
                        statusCode: status,
                        responseBody: nil,
                        error: nil,
                        duration: .milliseconds(5)
                    )
                }
                let batch = [
                    (outcome(.retry(after: .seconds(300)), 500), try message(0, 0)),
                    (outcome(.disableEndpoint, 410), try message(1)),
                    (outcome(.exhausted, 503), try message(2)),
                    (outcome(.delivered, 200), try message(3)),
                    (outcome(.delivered, 204), try message(0, 1)),
                ]
                #expect(try await store.deleteEndpoint(id: endpoints[3]))
                try await store.record(batch, disableAfter: .seconds(5 * 86_400))

                let messages = try await database.withConnection { connection in
                    try connection.query(
                        """
                        SELECT id, status, attempts, next_attempt_at > now() + interval '200 seconds'
                        FROM webhook_messages
                        """
                    ).map {
                        (
                            try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1),
                            try $0.decode(Int64.self, at: 2), try $0.decode(Bool.self, at: 3)
                        )
                    }
                }
                let states = Dictionary(uniqueKeysWithValues: messages.map { ($0.0, ($0.1, $0.2, $0.3)) })
                #expect(states.count == 4, "the deleted endpoint's message went with it")
                #expect(states[try message(0, 0).id].map { $0.0 == "pending" && $0.1 == 1 && $0.2 } == true)
                #expect(states[try message(0, 1).id].map { $0.0 == "delivered" && $0.1 == 1 } == true)
                #expect(states[try message(1).id]?.0 == "failed")
                #expect(states[try message(2).id]?.0 == "failed")

                let recovering = try #require(try await store.endpoint(id: endpoints[0]))
                #expect(recovering.enabled && recovering.failingSince == nil && recovering.lastSuccessAt != nil)
                let gone = try #require(try await store.endpoint(id: endpoints[1]))
                #expect(!gone.enabled && gone.disabledReason == "the endpoint answered 410 Gone")
                let exhausted = try #require(try await store.endpoint(id: endpoints[2]))
                #expect(exhausted.enabled && exhausted.failingSince != nil)

                let attempts = try await store.attempts(
                    endpointID: endpoints[0],
                    succeeded: nil,
                    before: nil,
                    limit: 10
                )
                #expect(attempts.map(\.statusCode) == [204, 500], "newest first, in the order they ended")
                let kinds = alerts.withLock { $0.map { ($0.data.contains("webhook_endpoint_disabled"), $0.data) } }
                #expect(kinds.filter(\.0).count == 1 && kinds.filter(\.0)[0].1.contains(endpoints[1]))
                #expect(kinds.filter { $0.1.contains("webhook_message_exhausted") }.count == 1)
            }
        }
    }

    /// A claimed message is claimed by nobody else until its lease ends (its instance died) or its
    /// outcome is written; a retry is then due at its own time.
    @Test func aLeaseHoldsUntilItEndsOrTheOutcomeIsWritten() async throws {
        let database = try await TestDatabase.create(migrated: true)
        let pool = ConnectionPool(
            configuration: .init(connection: database.configuration, maximumConnections: 2),
            logger: Logger(label: "test")
        )
        try await withRunning(pool) { pool in
            let store = MerchantWebhookStore(pool: pool)
            let endpoint = try await store.createEndpoint(
                url: "https://merchant.example/hook",
                events: ["*"],
                description: nil,
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            )
            try await database.withConnection { connection in
                _ = try connection.execute(
                    """
                    INSERT INTO webhook_messages (id, endpoint_id, event_id, order_id, type, payload)
                    VALUES ('msg_' || md5('lease'), $1, 1, 'ord_test', 'order.succeeded', '{}')
                    """,
                    [endpoint.id]
                )
            }
            func claim() async throws -> [ClaimedMessage] {
                try await store.claimDue(limit: 10, perEndpoint: 10, inFlight: [:], lease: .seconds(1))
            }
            let first = try await claim()
            #expect(first.count == 1)
            #expect(try await claim().isEmpty, "claimed again while leased")
            try await Task.sleep(for: .milliseconds(1_200))
            let again = try await claim()
            #expect(again.map(\.id) == first.map(\.id), "a lease that ran out frees the message")
            #expect(try await store.nextDue() == nil, "a leased message is nobody's next due")

            let retry = AttemptOutcome(
                next: .retry(after: .milliseconds(300)),
                statusCode: 503,
                responseBody: nil,
                error: nil,
                duration: .milliseconds(5)
            )
            try await store.record([(retry, try #require(again.first))], disableAfter: .seconds(86_400))
            #expect(try await claim().isEmpty, "due again only after its retry delay")
            let due = try #require(try await store.nextDue())
            #expect(due.timeIntervalSinceNow > 0 && due.timeIntervalSinceNow < 1)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await claim().count == 1, "written, the outcome ends the lease")
        }
    }
}
