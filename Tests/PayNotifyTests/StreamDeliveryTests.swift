import Foundation
import NIOCore
import NIOHTTP1
import PayNotifyClient
import Postgres
import TestSupport
import Testing

/// The four deliveries each order gets in the delivery tests, sent concurrently.
private let paymentSteps: [(type: String, progress: Int?)] = [
    ("processing", nil), ("progress", 30), ("progress", 60), ("succeeded", nil),
]

@Suite("Stream delivery: nothing lost, nothing twice")
struct StreamDeliveryTests {
    /// 200 concurrent webhooks across 50 orders with 4 streams each, three of which hang up and
    /// reconnect while events flow: every stream sees every event of its order once, in id order.
    /// Two hundred at once can outwait the pool (10 connections, 2 s) when the machine is busy with
    /// other suites; the answer is then a retryable 503, so each webhook is retried as a provider would.
    @Test func concurrentWebhooksReachEveryStreamOnce() async throws {
        let settings = ["PAYNOTIFY_MAX_STREAMS_PER_IP": "1000", "PAYNOTIFY_MAX_STREAMS_PER_ORDER": "16"]
        try await withLiveApp(overrides: settings) { client, database in
            var orders: [CreatedOrder] = []
            for _ in 0..<50 { orders.append(try await client.createOrder()) }
            let plans = orders.flatMap { order in
                (0..<4).map { FollowerPlan(order, via: [client], dropAfter: $0 == 0 ? nil : 1...2) }
            }
            let records = try await following(plans) { [orders] in
                try await withThrowingTaskGroup(of: Void.self) { webhooks in
                    for order in orders {
                        for step in paymentSteps {
                            webhooks.addTask {
                                try await client.sandboxUntilAccepted(
                                    step.type,
                                    order: order.id,
                                    progress: step.progress
                                )
                            }
                        }
                    }
                    try await webhooks.waitForAll()
                }
            }
            #expect(records.count == 200)
            #expect(records.contains { $0.connections > 1 })
            for record in records {
                #expect(try await expectComplete(record, in: database), "\(record)")
            }
        }
    }

    /// Webhooks keep coming while the listener's backend is terminated twice and PostgreSQL is
    /// restarted: providers retry what got a 5xx, and every stream still gets every committed event.
    @Test func nothingLostAcrossListenerKillsAndADatabaseRestart() async throws {
        let cluster = try await TestCluster.start()
        let database = try TestDatabase.existing(url: cluster.url)
        try await withLiveApp(overrides: ["PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "500"], database: database) {
            client,
            database in
            var orders: [CreatedOrder] = []
            for _ in 0..<10 { orders.append(try await client.createOrder()) }
            let plans = orders.flatMap { [FollowerPlan($0, via: [client]), FollowerPlan($0, via: [client])] }
            let records = try await following(plans, within: .seconds(90)) { [orders] in
                for percent in [5, 10] { try await client.sandboxToEvery(orders, "progress", progress: percent) }
                for percent in [15, 20] {
                    try await Self.terminateListener(database)
                    try await client.sandboxToEvery(orders, "progress", progress: percent)
                }
                try await cluster.stop()
                async let duringOutage: Void = client.sandboxToEvery(orders, "progress", progress: 25)
                try await Task.sleep(for: .seconds(1))
                try await cluster.restart()
                try await duringOutage
                for percent in [30, 35] { try await client.sandboxToEvery(orders, "progress", progress: percent) }
                try await client.sandboxToEvery(orders, "succeeded")
            }
            for record in records {
                #expect(try await expectComplete(record, in: database), "\(record)")
                #expect(record.received.count >= 9)  // seven progress rounds, status and finish
            }
        }
    }

    /// An event committed without a notification (its instance died between the commit and the
    /// NOTIFY) still reaches the open streams, within the recovery interval.
    @Test func eventWithoutANotificationArrivesWithinTheRecoveryInterval() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_RECOVERY_SECONDS": "1"]) { client, database in
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath) { stream in
                _ = try await stream.nextEvent()
                let written = ContinuousClock.now
                try await database.withConnection { connection in
                    try connection.execute(
                        "INSERT INTO order_events (order_id, event, data) VALUES ($1, 'ticket.issued', '{}')",
                        [order.id]
                    )
                }
                let event = try await stream.nextEvent()
                #expect(event?.name == "ticket.issued")
                #expect(ContinuousClock.now - written < .milliseconds(2500))
            }
        }
    }

    /// Kills the listener's backend, as an administrator or a failover would.
    static func terminateListener(_ database: TestDatabase) async throws {
        let terminated = try await database.withConnection { connection in
            try connection.query(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
            ).first!.decode(Int.self, at: 0)
        }
        #expect(terminated == 1)
    }

    /// An alert this instance raises reaches its ops stream once: at commit, and not again when its
    /// NOTIFY comes back to this instance's relay (two `stats` later, a second would have come).
    @Test func anAlertReachesTheRaisingInstancesOpsStreamOnce() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_ADMIN_TOKEN": TestSecrets.adminToken]) { client, _ in
            try await client.stream(path: "/v1/ops/events?token=\(TestSecrets.adminToken)") { ops in
                #expect(try await ops.next() == .retry(3000))
                let forged = try await client.forgedSandbox()
                #expect(forged.status == 400 || forged.status == 401)
                var alertIDs: [String?] = []
                var statsAfter = 0
                while statsAfter < 2, let event = try await ops.nextEvent() {
                    if event.name == "alert" { alertIDs.append(event.id) }
                    if event.name == "stats", !alertIDs.isEmpty { statsAfter += 1 }
                }
                #expect(alertIDs.count == 1 && alertIDs.first??.isEmpty == false, "\(alertIDs)")
            }
        }
    }

    /// Two instances on one database: a webhook taken by one reaches the streams held by both, and
    /// an alert raised on one reaches the ops stream on the other, with stats every second.
    @Test func twoInstancesOnOneDatabase() async throws {
        let database = try await TestDatabase.create()
        let settings = ["PAYNOTIFY_ADMIN_TOKEN": TestSecrets.adminToken]
        try await withLiveApp(overrides: settings, database: database) { first, _ in
            try await withLiveApp(overrides: settings, database: database) { second, _ in
                let order = try await first.createOrder()
                let plans = [first, second, second].map { FollowerPlan(order, via: [$0]) }
                let records = try await following(plans) {
                    for step in paymentSteps {
                        let answer = try await first.sandbox(step.type, order: order.id, progress: step.progress)
                        #expect(answer.status == 200)
                    }
                }
                for record in records {
                    #expect(try await expectComplete(record, in: database), "\(record)")
                    #expect(record.received.count == 5)  // processing, 2 × progress, succeeded, finish
                }

                try await second.stream(path: "/v1/ops/events?token=\(TestSecrets.adminToken)") { ops in
                    #expect(ops.status == 200)
                    #expect(try await ops.next() == .retry(3000))
                    let forged = try await first.forgedSandbox()
                    #expect(forged.status == 400 || forged.status == 401)
                    var sawAlert = false
                    var sawStats = false
                    while !(sawAlert && sawStats), let event = try await ops.nextEvent() {
                        if event.name == "alert" {
                            sawAlert = sawAlert || event.json["provider"] as? String == "sandbox"
                        }
                        if event.name == "stats" {
                            sawStats = true
                            #expect(event.json["open_streams"] is Int)
                            #expect(event.json["listener"] as? String == "listening")
                        }
                    }
                    #expect(sawAlert && sawStats)
                }
                try await second.stream(path: "/v1/ops/events?token=wrong-token-0000000000") { ops in
                    #expect(ops.status == 401)
                }
            }
        }
    }
}
