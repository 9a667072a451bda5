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
    /// meanwhile is skipped, its exhaustion raising no alert, and the others are still written.
    @Test func aBatchOfOutcomes() async throws {
        let alerts = Mutex<[Alert]>([])
        let onAlert: @Sendable (Alert) -> Void = { alert in alerts.withLock { $0.append(alert) } }
        try await withWebhookStore(onAlert: onAlert) { store, database in
            var endpoints: [String] = []
            for name in ["recovering", "gone", "exhausted", "deleted"] {
                endpoints.append(try await store.testEndpoint(name))
            }
            // Two messages for the first endpoint, one for each other.
            for (index, endpoint) in (endpoints + [endpoints[0]]).enumerated() {
                try await database.insertMessages(endpoint: endpoint, count: 1, seed: String(index))
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
                (outcome(.exhausted, 500), try message(3)),
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

    /// A claimed message is claimed by nobody else until its lease ends (its instance died) or its
    /// outcome is written; a retry is then due at its own time.
    @Test func aLeaseHoldsUntilItEndsOrTheOutcomeIsWritten() async throws {
        try await withWebhookStore { store, database in
            try await database.insertMessages(endpoint: try await store.testEndpoint(), count: 1, seed: "lease")
            func claim() async throws -> [ClaimedMessage] {
                // Seconds, not less: a busy machine (the start of the test run) can pause between two
                // steps for longer than a short lease or retry delay.
                try await store.claimDue(limit: 10, perEndpoint: 10, inFlight: [:], lease: .seconds(3))
            }
            let first = try await claim()
            #expect(first.count == 1)
            #expect(try await claim().isEmpty, "claimed again while leased")
            try await Task.sleep(for: .milliseconds(3_200))
            let again = try await claim()
            #expect(again.map(\.id) == first.map(\.id), "a lease that ran out frees the message")
            #expect(try await store.nextDue() == nil, "a leased message is nobody's next due")

            let retry = AttemptOutcome(
                next: .retry(after: .seconds(3)),
                statusCode: 503,
                responseBody: nil,
                error: nil,
                duration: .milliseconds(5)
            )
            try await store.record([(retry, try #require(again.first))], disableAfter: .seconds(86_400))
            #expect(try await claim().isEmpty, "due again only after its retry delay")
            let due = try #require(try await store.nextDue())
            #expect(due.timeIntervalSinceNow > 0 && due.timeIntervalSinceNow < 3.5)
            try await Task.sleep(for: .milliseconds(3_200))
            #expect(try await claim().count == 1, "written, the outcome ends the lease")
        }
    }

    /// An endpoint deleted while outcomes of its messages are being written: one waits for the
    /// other, neither deadlocks (make bench once found an outcome locking its message's row and
    /// then the endpoint's, and the delete the endpoint's and then its messages'). The race, run
    /// fifty times; either may go first, and neither may fail.
    @Test func deletingAnEndpointWhileItsOutcomesAreWritten() async throws {
        try await withWebhookStore(connections: 4) { store, database in
            let delivered = AttemptOutcome(
                next: .delivered,
                statusCode: 200,
                responseBody: nil,
                error: nil,
                duration: .milliseconds(5)
            )
            for round in 0..<50 {
                let endpoint = try await store.testEndpoint()
                try await database.insertMessages(endpoint: endpoint, count: 20, seed: String(round))
                let claimed = try await store.claimDue(limit: 20, perEndpoint: 20, inFlight: [:], lease: .seconds(30))
                #expect(claimed.count == 20)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await store.record(claimed.map { (delivered, $0) }, disableAfter: .seconds(86_400))
                    }
                    group.addTask { _ = try await store.deleteEndpoint(id: endpoint) }
                    try await group.waitForAll()
                }
                #expect(try await store.endpoint(id: endpoint) == nil)
            }
        }
    }
}

/// A running pool on a fresh migrated database, and the merchant webhook store over it.
private func withWebhookStore(
    connections: Int = 2,
    onAlert: (@Sendable (Alert) -> Void)? = nil,
    _ body: @Sendable (MerchantWebhookStore, TestDatabase) async throws -> Void
) async throws {
    let database = try await TestDatabase.create(migrated: true)
    // These tests are about what the store writes, not about waiting: a generous wait for a
    // connection, so a busy start of the test run (seconds with every core taken) cannot fail them.
    let pool = ConnectionPool(
        configuration: .init(
            connection: database.configuration,
            maximumConnections: connections,
            acquireTimeout: .seconds(60)
        ),
        logger: Logger(label: "test")
    )
    try await withRunning(pool) { pool in
        try await body(MerchantWebhookStore(pool: pool, onAlert: onAlert), database)
    }
}

extension MerchantWebhookStore {
    /// An endpoint named for the test (its description); nothing is ever sent to it.
    fileprivate func testEndpoint(_ name: String = "merchant") async throws -> String {
        try await self.createEndpoint(
            url: "https://\(name).example/hook",
            events: ["*"],
            description: name,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        ).id
    }
}

extension TestDatabase {
    /// `count` pending messages for `endpoint`, due now, their ids and event ids made from `seed`.
    fileprivate func insertMessages(endpoint: String, count: Int, seed: String) async throws {
        try await self.withConnection { connection in
            _ = try connection.execute(
                """
                INSERT INTO webhook_messages (id, endpoint_id, event_id, order_id, type, payload)
                SELECT 'msg_' || md5($2 || '.' || n), $1, abs(hashtext($2)::bigint) * 100 + n, 'ord_test', 'order.succeeded', '{}'
                FROM generate_series(1, $3) AS n
                """,
                [endpoint, seed, count]
            )
        }
    }
}
