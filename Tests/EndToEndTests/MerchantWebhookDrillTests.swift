import Foundation
import Glibc
import MerchantWebhooks
import NIOHTTP1
import PayNotifyClient
import Postgres
import TestSupport
import Testing

/// Merchant webhooks through faults, on the real programs: two `paynotify serve` instances behind
/// nginx deliver to a receiver in this process (the merchant's backend) while providers' webhooks
/// keep coming. Each drill prints one `{"drill": …}` line for RELIABILITY.md. Nested in
/// ``DrillTests`` so that its `.serialized` runs them one at a time with the others: two drills
/// at once would each time the other's load.
extension DrillTests {
    @Suite("Fault drills: merchant webhooks")
    struct MerchantWebhookDrillTests {
        /// Webhooks to loopback, a 5 s attempt timeout (so a killed instance's lease, timeout + 10 s,
        /// runs out within the drill) and the given schedule.
        private static func settings(schedule: String) -> [String: String] {
            [
                "PAYNOTIFY_ALLOW_HTTP_WEBHOOKS": "true", "PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
                "PAYNOTIFY_WEBHOOK_TIMEOUT_SECONDS": "5", "PAYNOTIFY_WEBHOOK_RETRY_SCHEDULE": schedule,
                "PAYNOTIFY_RECOVERY_SECONDS": "2", "PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "1000",
            ]
        }

        /// Orders for the provider load, and how many endpoints the isolation drill registers.
        private static var orders: Int { DrillScale.current.streams / 5 }
        private static var endpoints: Int { DrillScale.current.streams }

        /// One endpoint, a provider load through nginx disturbed by `fault`, then every order paid.
        /// Afterwards every message must reach the receiver; a message whose attempt was cut off by the
        /// fault may arrive twice (delivery is at least once), which is counted.
        private static func drill(
            _ name: String,
            database: TestDatabase? = nil,
            fault: @escaping @Sendable (Deployment) async throws -> Void
        ) async throws -> DrillReport {
            let receiver = WebhookReceiver(answers: [:], delay: .milliseconds(100))
            let started = ContinuousClock.now
            return try await receiver.serve { port in
                try await Deployment.run(
                    settings: Self.settings(schedule: "0s,1s,1s,2s,5s,5s,10s,10s"),
                    database: database
                ) {
                    deployment in
                    let client = deployment.viaNginx
                    let endpoint = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/hook")
                    var orders: [CreatedOrder] = []
                    for _ in 0..<Self.orders { orders.append(try await client.createOrder()) }
                    let load = try await ProviderLoad.disturbed(
                        deployment,
                        orders: orders,
                        rate: DrillScale.current.rate,
                        by: fault
                    )
                    let paid = ContinuousClock.now
                    try await Self.untilSettled(deployment.database)
                    var report = try await Self.report(
                        name,
                        receiver: receiver,
                        deployment: deployment,
                        secret: endpoint.secret
                    )
                    report.webhookAttempts = load.attempts
                    report.acknowledged = load.acknowledged.count
                    report.retryable5xx = load.retryable
                    report.extra["drain_after_paid_seconds"] = String(
                        format: "%.1f",
                        (ContinuousClock.now - paid) / .seconds(1)
                    )
                    report.seconds = (ContinuousClock.now - started) / .seconds(1)
                    return report
                }
            }
        }

        /// Waits until no message is pending.
        private static func untilSettled(_ database: TestDatabase, within timeout: Duration = .seconds(120))
            async throws
        {
            try await eventually(within: timeout, "every merchant message delivered or failed") {
                try await Self.count("SELECT count(*) FROM webhook_messages WHERE status = 'pending'", in: database)
                    == 0
            }
        }

        private static func count(_ sql: String, in database: TestDatabase) async throws -> Int {
            try await database.withConnection { connection in
                try connection.query(sql).first!.decode(Int.self, at: 0)
            }
        }

        /// Compares what the database holds with what the receiver acknowledged: `eventsExpected` is the
        /// events a message is due for times the endpoints, `eventsDelivered` the messages delivered,
        /// `lost` the messages never acknowledged, `duplicated` the acknowledgements beyond one each.
        /// Every acknowledged request's signature is checked with `secret` when given.
        private static func report(
            _ name: String,
            receiver: WebhookReceiver,
            deployment: Deployment,
            secret: String?
        ) async throws -> DrillReport {
            let database = deployment.database
            let due = try await Self.count(
                """
                SELECT count(*) * (SELECT count(*) FROM webhook_endpoints) FROM order_events
                WHERE event <> 'finish' AND NOT (event = 'status' AND data ->> 'status' = 'pending')
                """,
                in: database
            )
            let messages = try await database.withConnection { connection in
                try connection.query("SELECT id, status FROM webhook_messages").map {
                    (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1))
                }
            }
            let acknowledged = await receiver.acknowledgedIDs
            let unique = Set(acknowledged)
            var report = DrillReport(name: name)
            report.crashes = (0..<2).filter { !deployment.instance($0).isRunning }.count
            report.eventsExpected = due
            report.eventsDelivered = messages.filter { $0.1 == "delivered" }.count
            report.lost = messages.filter { !unique.contains($0.0) }.count
            report.duplicated = acknowledged.count - unique.count
            report.extra["messages"] = "\(messages.count)"
            report.extra["attempts"] = "\(try await Self.count("SELECT count(*) FROM webhook_attempts", in: database))"
            report.extra["failed_attempts"] =
                "\(try await Self.count("SELECT count(*) FROM webhook_attempts WHERE NOT succeeded", in: database))"
            if let secret, let key = WebhookSecret(secret) {
                let unverified = await receiver.received.filter { delivery in
                    (try? MessageVerifier.verify(
                        header: { delivery.headers[$0] },
                        body: Array(delivery.body.utf8),
                        secrets: [key],
                        now: Date()
                    )) == nil
                }
                report.extra["unverified"] = "\(unverified.count)"
            }
            return report
        }

        /// The attempts whose outcome one instance may not have written when it stops: those in flight
        /// to the endpoint (16 by default) and those whose outcome waits to be written, which stop
        /// the claiming at 64 (the recorder's batch) while up to 16 more may still end.
        private static let unrecordedPerInstance = 16 + 64 + 16

        /// Checks the drill's figures. A message goes out again only after an attempt that failed (a
        /// timeout whose request did arrive) or one whose outcome was never written (cut off by the
        /// fault: at most `unrecordedAtMost`), so repeats are bounded by those.
        private static func expectClean(_ report: DrillReport, unrecordedAtMost: Int) {
            report.print()
            let duplicatesAtMost = unrecordedAtMost + Int(report.extra["failed_attempts"] ?? "0")!
            #expect(
                report.extra["messages"] == "\(report.eventsExpected)",
                "\(report.name): an event without its message"
            )
            #expect(report.eventsDelivered == report.eventsExpected, "\(report.name): messages not delivered")
            #expect(report.lost == 0, "\(report.name): messages never acknowledged")
            #expect(
                report.duplicated <= duplicatesAtMost,
                "\(report.name): more repeats than failed or unrecorded attempts"
            )
            #expect(report.extra["unverified"] ?? "0" == "0", "\(report.name): a signature that does not verify")
            #expect(report.crashes == 0, "\(report.name): a process crashed")
        }

        /// An instance is SIGKILLed mid-delivery and started again: the messages it had claimed go out
        /// again when their lease runs out, so none is lost; those it had sent may arrive twice.
        @Test func instanceKilledMidDelivery() async throws {
            let report = try await Self.drill("merchant_webhooks_instance_sigkill") { deployment in
                try await deployment.killAndRestart(0)
            }
            Self.expectClean(report, unrecordedAtMost: Self.unrecordedPerInstance)
        }

        /// PostgreSQL stops mid-delivery and starts again: attempts that end meanwhile are recorded once
        /// it is back (their recording is retried within the lease); messages committed before and
        /// after all arrive.
        @Test func databaseRestartMidDelivery() async throws {
            let cluster = try await TestCluster.start()
            let report = try await Self.drill(
                "merchant_webhooks_database_restart",
                database: try TestDatabase.existing(url: cluster.url)
            ) {
                _ in
                try await cluster.restart(after: DrillScale.current.outage)
            }
            Self.expectClean(report, unrecordedAtMost: 2 * Self.unrecordedPerInstance)
        }

        /// The endpoint is down (connections refused) for longer than the compressed schedule lasts: the
        /// messages of before the outage exhaust their attempts (an alert each), those of during it are
        /// delivered when it returns, and `recover` sends the exhausted ones. Nothing is lost.
        @Test func endpointDownLongerThanTheSchedule() async throws {
            let port = try TestEnvironment.freePort()
            try await Deployment.run(settings: Self.settings(schedule: "0s,1s,2s,4s")) { deployment in
                let client = deployment.viaNginx
                let endpoint = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/hook")
                var created: [CreatedOrder] = []
                for _ in 0..<Self.orders { created.append(try await client.createOrder()) }
                let orders = created
                let wentDown = ContinuousClock.now
                try await client.sandboxToEvery(orders, "processing")
                // A refused connection takes the whole attempt timeout (the HTTP client retries the
                // connection until then), so how long the schedule lasts depends on the backlog.
                try await eventually(within: .seconds(120), "every order.processing message exhausted") {
                    try await Self.count(
                        "SELECT count(*) FROM webhook_messages WHERE status = 'failed'",
                        in: deployment.database
                    )
                        == orders.count
                }
                try await client.sandboxToEvery(orders, "succeeded")
                let down = ContinuousClock.now - wentDown
                let receiver = WebhookReceiver(answers: [:])
                var report = try await receiver.serve(port: port) { _ in
                    try await Self.untilSettled(deployment.database, within: .seconds(60))
                    let exhausted = try await Self.count(
                        "SELECT count(*) FROM webhook_messages WHERE status = 'failed'",
                        in: deployment.database
                    )
                    let alerts = try await Self.count(
                        "SELECT count(*) FROM alerts WHERE kind = 'webhook_message_exhausted'",
                        in: deployment.database
                    )
                    let recovered = try await client.merchantJSON(
                        .POST,
                        "/v1/webhook-endpoints/\(endpoint.id)/recover",
                        body: #"{"since":"2000-01-01T00:00:00Z"}"#
                    )
                    try await Self.untilSettled(deployment.database, within: .seconds(60))
                    var report = try await Self.report(
                        "merchant_endpoint_down",
                        receiver: receiver,
                        deployment: deployment,
                        secret: endpoint.secret
                    )
                    report.extra["down_seconds"] = String(format: "%.1f", down / .seconds(1))
                    report.extra["exhausted"] = "\(exhausted)"
                    report.extra["exhausted_alerts"] = "\(alerts)"
                    report.extra["recovered"] = (recovered["recovered"] as? Int).map(String.init) ?? "?"
                    return report
                }
                report.seconds = (ContinuousClock.now - wentDown) / .seconds(1)
                Self.expectClean(report, unrecordedAtMost: 0)
                #expect(report.duplicated == 0, "refused connections never reached the receiver")
                #expect(
                    report.extra["exhausted"] == "\(orders.count)",
                    "only the messages of before the outage exhausted"
                )
                #expect(report.extra["exhausted_alerts"] == report.extra["exhausted"])
                #expect(report.extra["recovered"] == report.extra["exhausted"])
            }
        }

        /// Many endpoints, one of which accepts connections and never answers: every other endpoint gets
        /// all its messages, and the hanging one ties up no more than its per-endpoint limit.
        @Test func manyEndpointsOneHanging() async throws {
            let hanging = try HangingListener()
            defer { hanging.close() }
            let receiver = WebhookReceiver(answers: [:])
            let report = try await receiver.serve { port in
                try await Deployment.run(settings: Self.settings(schedule: "0s,5s,5m")) { deployment in
                    let client = deployment.viaNginx
                    let stuck = try await client.createEndpoint(url: "http://127.0.0.1:\(hanging.port)/hook")
                    for index in 1..<Self.endpoints {
                        _ = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/e\(index)")
                    }
                    var orders: [CreatedOrder] = []
                    for _ in 0..<5 { orders.append(try await client.createOrder()) }
                    let started = ContinuousClock.now
                    try await client.sandboxToEvery(orders, "processing")
                    try await client.sandboxToEvery(orders, "succeeded")
                    let acknowledged = ContinuousClock.now - started
                    let healthy = orders.count * 2 * (Self.endpoints - 1)
                    try await eventually(within: .seconds(180), "every healthy endpoint's messages delivered") {
                        try await Self.count(
                            "SELECT count(*) FROM webhook_messages WHERE status = 'delivered'",
                            in: deployment.database
                        )
                            == healthy
                    }
                    let drained = ContinuousClock.now - started
                    let (stuckAttempts, healthyFailures) = try await deployment.database.withConnection { connection in
                        let row = try connection.query(
                            """
                            SELECT count(*) FILTER (WHERE endpoint_id = $1),
                                count(*) FILTER (WHERE endpoint_id <> $1 AND NOT succeeded)
                            FROM webhook_attempts
                            """,
                            [stuck.id]
                        ).first!
                        return (try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1))
                    }
                    let received = await receiver.received
                    var report = DrillReport(name: "merchant_endpoints_one_hanging")
                    report.crashes = (0..<2).filter { !deployment.instance($0).isRunning }.count
                    report.eventsExpected = healthy
                    report.eventsDelivered = Set(received.compactMap { $0.headers["webhook-id"] }).count
                    report.duplicated = received.count - report.eventsDelivered
                    report.lost = healthy - report.eventsDelivered
                    report.seconds = drained / .seconds(1)
                    report.extra["endpoints"] = "\(Self.endpoints)"
                    report.extra["intake_seconds"] = String(format: "%.2f", acknowledged / .seconds(1))
                    report.extra["delivered_per_second"] = String(
                        format: "%.0f",
                        Double(healthy) / (drained / .seconds(1))
                    )
                    report.extra["hanging_attempts"] = "\(stuckAttempts)"
                    report.extra["healthy_failed_attempts"] = "\(healthyFailures)"
                    report.extra["hanging_connections"] = "\(hanging.pendingConnections)"
                    return report
                }
            }
            report.print()
            #expect(report.lost == 0)
            // A message goes out again only after an attempt that failed (here: timed out).
            #expect(report.duplicated <= Int(report.extra["healthy_failed_attempts"] ?? "0")!)
            #expect(report.crashes == 0)
        }
    }
}

/// A loopback port that accepts connections (the kernel completes them) and never reads or answers:
/// an endpoint that hangs.
private final class HangingListener: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        (self.descriptor, self.port) = try TestEnvironment.loopbackSocket(listening: 4096)
    }

    /// Connections the kernel completed and nobody accepted: drained with `accept` and counted.
    var pendingConnections: Int {
        var count = 0
        let flags = fcntl(self.descriptor, F_GETFL)
        _ = fcntl(self.descriptor, F_SETFL, flags | O_NONBLOCK)
        while case let accepted = accept(self.descriptor, nil, nil), accepted >= 0 {
            Glibc.close(accepted)
            count += 1
        }
        return count
    }

    func close() { Glibc.close(self.descriptor) }
}
