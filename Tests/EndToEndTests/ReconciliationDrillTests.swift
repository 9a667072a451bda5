import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import Postgres
import ProviderEmulator
import TestSupport
import Testing

/// Reconciliation through faults, on the real programs: two `paynotify serve` instances behind
/// nginx ask the provider emulator (WeChat Pay's API, real signing) about orders whose callbacks
/// were lost, while an instance is SIGKILLed and PostgreSQL restarts. Prints one `{"drill": …}`
/// line for RELIABILITY.md. Nested in ``DrillTests`` so that it runs alone.
extension DrillTests {
    @Suite("Fault drills: reconciliation")
    struct ReconciliationDrillTests {
        /// Paid orders (a third of their callbacks dropped) and unpaid ones past their deadline;
        /// an instance SIGKILLed and PostgreSQL restarted while the reconcilers work. Afterwards
        /// every paid order is `succeeded`, every unpaid one `expired` after a close at the
        /// provider, and every stream got every event of its order once.
        @Test func lostCallbacksThroughFaults() async throws {
            let paidCount = DrillScale.current.streams
            let unpaidCount = paidCount / 10
            let keys = EmulatedProviderKeys.shared
            let cluster = try await TestCluster.start()
            let emulatorPort = try TestEnvironment.freePort()
            var settings = keys.serviceSettings(emulatorPort: emulatorPort)
            // First asked once every order has been made and paid (making 1,100 takes a few
            // seconds), then every 5 s; each instance at most 200 queries a second. (The instances
            // are debug builds, whose RSA signing is slow: asking every order every 2 s from the
            // start kept both cores busy signing.)
            settings.merge([
                "PAYNOTIFY_RECONCILE_AFTER": "15s", "PAYNOTIFY_RECONCILE_EVERY": "5s",
                "PAYNOTIFY_WECHATPAY_CLOSE_AFTER": "1s", "PAYNOTIFY_CLOSE_GIVE_UP": "120s",
                "PAYNOTIFY_WECHATPAY_RATE_LIMIT": "200", "PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "1000",
                // Every stream comes from this machine, through nginx.
                "PAYNOTIFY_MAX_STREAMS_PER_IP": "5000",
            ]) { $1 }
            let started = ContinuousClock.now
            let report = try await Deployment.run(
                settings: settings,
                database: try TestDatabase.existing(url: cluster.url)
            ) { deployment in
                let configuration = keys.emulatorConfiguration(servicePort: deployment.nginxPort, port: emulatorPort)
                return try await EmulatedProviders.serve(configuration: configuration) { _ in
                    let client = deployment.viaNginx
                    let emulator = LoopbackHTTPClient(host: "127.0.0.1", port: emulatorPort)
                    // Made 8 at a time: each order through nginx, then its trade at the emulator.
                    let made = try await withThrowingTaskGroup(of: [CreatedOrder].self) { group in
                        for worker in 0..<8 {
                            group.addTask {
                                var orders: [CreatedOrder] = []
                                for _ in stride(from: worker, to: paidCount + unpaidCount, by: 8) {
                                    let order = try await client.createOrder(provider: "wechatpay")
                                    try await emulator.controlCall(
                                        "/control/trades",
                                        #"{"provider":"wechatpay","order_id":"\#(order.id)","amount":1999,"currency":"CNY"}"#
                                    )
                                    orders.append(order)
                                }
                                return orders
                            }
                        }
                        return try await group.reduce(into: []) { $0 += $1 }
                    }
                    let paid = Array(made.prefix(paidCount))
                    let unpaid = Array(made.dropFirst(paidCount))
                    let payments = paid
                    let unpaidIDs = "{" + unpaid.map(\.id).joined(separator: ",") + "}"
                    let records = try await following(
                        payments.map { FollowerPlan($0, via: [client]) },
                        within: .seconds(240)
                    ) {
                        for (index, order) in payments.enumerated() {
                            let callback = index % 3 == 0 ? "drop" : "send"
                            try await emulator.controlCall(
                                "/control/trades/wechatpay/\(order.id)/pay",
                                #"{"callback":"\#(callback)"}"#
                            )
                        }
                        try await deployment.database.withConnection { connection in
                            try connection.execute(
                                """
                                UPDATE orders SET created_at = created_at - interval '1 hour',
                                    updated_at = updated_at - interval '1 hour', expires_at = now(), reconcile_at = now()
                                WHERE id = ANY($1::text[])
                                """,
                                [unpaidIDs]
                            )
                        }
                        try await Task.sleep(for: .seconds(2))
                        try await deployment.killAndRestart(0)
                        try await cluster.restart(after: DrillScale.current.outage)
                    }
                    try await eventually(within: .seconds(120), "every unpaid order expired") {
                        try await Self.count(
                            "SELECT count(*) FROM orders WHERE status = 'expired'",
                            in: deployment.database
                        ) == unpaidCount
                    }
                    var report = DrillReport(name: "reconciliation_lost_callbacks")
                    report.streams = records.count
                    report.crashes = (0..<2).filter { !deployment.instance($0).isRunning }.count
                    report.eventsExpected = paid.count
                    report.eventsDelivered = try await Self.count(
                        "SELECT count(*) FROM orders WHERE status = 'succeeded'",
                        in: deployment.database
                    )
                    report.lost = paid.count - report.eventsDelivered
                    report.duplicated = try await Self.count(
                        """
                        SELECT count(*) FROM (SELECT order_id FROM order_events WHERE event = 'finish'
                        GROUP BY order_id HAVING count(*) > 1) AS repeated
                        """,
                        in: deployment.database
                    )
                    var incomplete = 0
                    for record in records where !(try await expectComplete(record, in: deployment.database)) {
                        incomplete += 1
                    }
                    report.extra["streams_incomplete"] = "\(incomplete)"
                    report.extra["unpaid"] = "\(unpaid.count)"
                    report.extra["unpaid_expired"] =
                        "\(try await Self.count("SELECT count(*) FROM orders WHERE status = 'expired'", in: deployment.database))"
                    report.extra["callbacks_dropped"] = "\((paid.count + 2) / 3)"
                    report.extra["found_by_query"] =
                        "\(try await Self.count("SELECT count(*) FROM alerts WHERE kind = 'callback_missing'", in: deployment.database))"
                    let calls = try await emulator.controlCall("/control/calls?provider=wechatpay", method: .GET)
                    report.extra["provider_calls"] = "\(calls.components(separatedBy: "\"operation\"").count - 1)"
                    return report
                }
            }
            var finished = report
            finished.seconds = (ContinuousClock.now - started) / .seconds(1)
            finished.print()
            #expect(finished.lost == 0, "a paid order did not end succeeded")
            #expect(finished.duplicated == 0, "an order finished twice")
            #expect(finished.extra["streams_incomplete"] == "0", "a stream missed or repeated an event")
            #expect(finished.extra["unpaid_expired"] == finished.extra["unpaid"], "an unpaid order did not expire")
            #expect(finished.crashes == 0)
        }

        private static func count(_ sql: String, in database: TestDatabase) async throws -> Int {
            try await database.withConnection { connection in
                try connection.query(sql).first!.decode(Int.self, at: 0)
            }
        }
    }
}

extension LoopbackHTTPClient {
    /// A call to the provider emulator's control API that must succeed; its answer's text.
    @discardableResult
    fileprivate func controlCall(_ path: String, _ body: String = "", method: HTTPMethod = .POST) async throws
        -> String
    {
        let response = try await self.send(
            method: method,
            path: path,
            headers: [("Content-Type", "application/json")],
            body: Array(body.utf8)
        )
        guard (200..<300).contains(response.status) else {
            throw UnexpectedAnswer(description: "emulator \(path): \(response.status) \(response.text)")
        }
        return response.text
    }
}
