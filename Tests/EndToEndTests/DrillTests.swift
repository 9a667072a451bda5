import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import PayNotifyClient
import Postgres
import Synchronization
import TestSupport
import Testing

/// How big the drills are: `PAYNOTIFY_DRILLS=full` (`make drills`) or the quick ones `make test` runs.
struct DrillScale: Sendable {
    let streams: Int
    let rate: Int
    let outage: Duration
    let listenerKills: Int
    let instanceCycles: Int

    static let current: DrillScale =
        ProcessInfo.processInfo.environment["PAYNOTIFY_DRILLS"] == "full"
        ? DrillScale(streams: 1000, rate: 200, outage: .seconds(5), listenerKills: 30, instanceCycles: 6)
        : DrillScale(streams: 100, rate: 50, outage: .seconds(2), listenerKills: 4, instanceCycles: 2)
}

/// A steady webhook load through nginx, as providers send it: each delivery is retried with its
/// own event id until it is acknowledged (a 5xx or a broken connection means "try again"), and
/// every acknowledged event id is kept, to check afterwards that each was really committed.
final class ProviderLoad: Sendable {
    private struct Counts {
        var attempts = 0
        var retryable = 0
        var acknowledged: [String] = []
        var refused = 0
        /// When the fault began, and the answers since: acknowledged (true) or retryable (false).
        var faultStarted: ContinuousClock.Instant?
        var answersSinceFault: [(at: ContinuousClock.Instant, acknowledged: Bool)] = []
    }

    private let counts = Mutex(Counts())
    private let stopped = Atomic<Bool>(false)

    /// Sends `rate` progress deliveries a second, round-robin over `orders`, until ``stop()``.
    func run(_ client: LoopbackHTTPClient, orders: [CreatedOrder], rate: Int) async {
        await withTaskGroup(of: Void.self) { group in
            let start = ContinuousClock.now
            var index = 0
            while !self.stopped.load(ordering: .relaxed) {
                try? await Task.sleep(until: start + .seconds(1) / rate * index, clock: .continuous)
                let order = orders[index % orders.count]
                let percent = index % 100
                group.addTask { await self.deliver(client, order: order, percent: percent) }
                index += 1
            }
        }
    }

    func stop() { self.stopped.store(true, ordering: .relaxed) }

    /// A load at `rate` over `orders` through nginx, disturbed by `fault` two seconds in and
    /// stopped two seconds after it; then every order is paid (retried through what the fault
    /// left). Returns the load, for its counts.
    static func disturbed(
        _ deployment: Deployment,
        orders: [CreatedOrder],
        rate: Int,
        by fault: @Sendable (Deployment) async throws -> Void
    ) async throws -> ProviderLoad {
        let client = deployment.viaNginx
        let load = ProviderLoad()
        async let flowing: Void = load.run(client, orders: orders, rate: rate)
        do {
            try await Task.sleep(for: .seconds(2))
            load.counts.withLock { $0.faultStarted = .now }
            try await fault(deployment)
            try await Task.sleep(for: .seconds(2))
        } catch {
            load.stop()
            await flowing
            throw error
        }
        load.stop()
        await flowing
        try await client.sandboxToEvery(orders, "succeeded")
        return load
    }

    private func deliver(_ client: LoopbackHTTPClient, order: CreatedOrder, percent: Int) async {
        let eventID = "drill-\(UUID().uuidString)"
        for _ in 0..<200 {
            self.counts.withLock { $0.attempts += 1 }
            let status = (try? await client.sandbox("progress", order: order.id, eventID: eventID, progress: percent))?
                .status
            switch status {
            case .some(200..<300):
                self.counts.withLock { counts in
                    counts.acknowledged.append(eventID)
                    if counts.faultStarted != nil { counts.answersSinceFault.append((.now, true)) }
                }
                return
            case .some(let status) where status < 500:
                self.counts.withLock { $0.refused += 1 }
                return
            default:
                self.counts.withLock { counts in
                    counts.retryable += 1
                    if counts.faultStarted != nil { counts.answersSinceFault.append((.now, false)) }
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    var attempts: Int { self.counts.withLock { $0.attempts } }
    var retryable: Int { self.counts.withLock { $0.retryable } }
    var refused: Int { self.counts.withLock { $0.refused } }
    var acknowledged: [String] { self.counts.withLock { $0.acknowledged } }

    /// Seconds from the fault's start until webhooks were acknowledged again: to the first
    /// acknowledgement after the last retryable answer; 0 when the fault refused none.
    var recoverySeconds: Double? {
        self.counts.withLock { counts in
            guard let started = counts.faultStarted else { return nil }
            guard let lastRefused = counts.answersSinceFault.last(where: { !$0.acknowledged })?.at else { return 0 }
            guard let recovered = counts.answersSinceFault.first(where: { $0.acknowledged && $0.at > lastRefused })?.at
            else { return nil }
            return (recovered - started) / .seconds(1)
        }
    }
}

/// One drill's figures, printed as a JSON line (`{"drill":…}`) for RELIABILITY.md.
struct DrillReport: Sendable {
    var name: String
    var streams = 0
    var webhookAttempts = 0
    var acknowledged = 0
    var retryable5xx = 0
    var acknowledgedNotCommitted = 0
    var eventsExpected = 0
    var eventsDelivered = 0
    var lost = 0
    var duplicated = 0
    var crashes = 0
    var seconds = 0.0
    /// From the fault until webhooks were acknowledged again (``ProviderLoad/recoverySeconds``).
    var recoverySeconds: Double?
    var extra: [String: String] = [:]

    func print() {
        var fields: [String: Any] = [
            "drill": self.name, "streams": self.streams, "webhook_attempts": self.webhookAttempts,
            "acknowledged": self.acknowledged, "retryable_5xx": self.retryable5xx,
            "acknowledged_not_committed": self.acknowledgedNotCommitted, "events_expected": self.eventsExpected,
            "events_delivered": self.eventsDelivered, "lost": self.lost, "duplicated": self.duplicated,
            "crashes": self.crashes, "seconds": (self.seconds * 10).rounded() / 10,
        ]
        if let recovery = self.recoverySeconds { fields["recovery_seconds"] = (recovery * 10).rounded() / 10 }
        for (key, value) in self.extra { fields[key] = value }
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}

@Suite("Fault drills: two instances behind nginx under load", .serialized)
struct DrillTests {
    /// Runs streams and a provider load through nginx, disturbs them with `fault`, then pays every
    /// order and checks: every acknowledged delivery was committed, and every stream got every
    /// event of its order once.
    static func drill(
        _ name: String,
        database: TestDatabase? = nil,
        settings: [String: String] = [:],
        fault: @escaping @Sendable (Deployment) async throws -> Void
    ) async throws -> DrillReport {
        let scale = DrillScale.current
        let started = ContinuousClock.now
        return try await Deployment.run(
            // One test client stands for every browser: the per-address limit must let it have them all.
            settings: [
                "PAYNOTIFY_RECOVERY_SECONDS": "2", "PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "1000",
                "PAYNOTIFY_MAX_STREAMS_PER_IP": "5000",
            ].merging(settings) { $1 },
            database: database
        ) { deployment in
            let client = deployment.viaNginx
            var orders: [CreatedOrder] = []
            for _ in 0..<scale.streams { orders.append(try await client.createOrder()) }
            let plans = orders.map { FollowerPlan($0, via: [client]) }
            let loads = Mutex<ProviderLoad?>(nil)
            let records = try await following(plans, within: .seconds(180)) { [orders] in
                let load = try await ProviderLoad.disturbed(deployment, orders: orders, rate: scale.rate, by: fault)
                loads.withLock { $0 = load }
            }
            let load = loads.withLock { $0 }!
            var report = DrillReport(name: name)
            report.crashes = (0..<2).filter { !deployment.instance($0).isRunning }.count
            report.streams = records.count
            report.webhookAttempts = load.attempts
            report.acknowledged = load.acknowledged.count
            report.retryable5xx = load.retryable
            report.recoverySeconds = load.recoverySeconds
            let acknowledged = load.acknowledged
            let committed = try await deployment.database.withConnection { connection in
                try connection.query(
                    """
                    SELECT count(*) FROM webhook_inbox
                    WHERE provider_event_id IN (SELECT jsonb_array_elements_text($1::jsonb))
                    """,
                    [String(decoding: try JSONEncoder().encode(acknowledged), as: UTF8.self)]
                ).first!.decode(Int.self, at: 0)
            }
            report.acknowledgedNotCommitted = acknowledged.count - committed
            for record in records {
                let expected = try await logIDs(of: record.orderID, in: deployment.database).filter {
                    $0 > (record.snapshotID ?? .max)
                }
                report.eventsExpected += expected.count
                report.eventsDelivered += record.received.count
                report.lost += Set(expected).subtracting(record.received).count
                report.duplicated += record.received.count - Set(record.received).count
            }
            report.seconds = (ContinuousClock.now - started) / .seconds(1)
            return report
        }
    }

    static func expectClean(_ report: DrillReport) {
        report.print()
        #expect(report.acknowledgedNotCommitted == 0, "\(report.name): a 2xx for an uncommitted delivery")
        #expect(report.lost == 0, "\(report.name): events lost")
        #expect(report.duplicated == 0, "\(report.name): events twice")
        #expect(report.crashes == 0, "\(report.name): a process crashed")
        #expect(report.eventsDelivered == report.eventsExpected)
    }

    /// PostgreSQL is stopped (fast shutdown) and started again mid-load: deliveries meanwhile get a
    /// retryable 5xx, none is acknowledged unless committed, and every committed event reaches
    /// every open stream afterwards.
    @Test func databaseRestart() async throws {
        let cluster = try await TestCluster.start()
        var report = try await Self.drill("database_restart", database: try TestDatabase.existing(url: cluster.url)) {
            _ in
            try await cluster.restart(after: DrillScale.current.outage)
        }
        report.extra["outage_seconds"] = "\(DrillScale.current.outage.components.seconds)"
        Self.expectClean(report)
        #expect(report.retryable5xx > 0, "the outage was not felt")
    }

    /// Behind PgBouncer in transaction mode (`deploy/pgbouncer.ini`), the listeners connected
    /// directly: an instance is SIGKILLed and started again, then PostgreSQL behind the pooler is
    /// restarted. Statements run unnamed (the pooler is detected), migrations and locks hold per
    /// transaction, and nothing is lost or sent twice.
    @Test func behindPgBouncer() async throws {
        let cluster = try await TestCluster.start()
        try await TestPgBouncer.run(upstreamURL: cluster.url) { bouncer in
            let settings = [
                "DATABASE_URL": bouncer.url(for: cluster.url), "PAYNOTIFY_LISTEN_DATABASE_URL": cluster.url,
            ]
            var report = try await Self.drill(
                "pgbouncer_sigkill_and_database_restart",
                database: try TestDatabase.existing(url: cluster.url),
                settings: settings
            ) { deployment in
                try await deployment.killAndRestart(0)
                try await cluster.restart(after: DrillScale.current.outage)
            }
            report.extra["outage_seconds"] = "\(DrillScale.current.outage.components.seconds)"
            Self.expectClean(report)
            #expect(report.retryable5xx > 0, "the outage was not felt")
        }
    }

    /// The listeners' backends are terminated every two seconds: nothing is lost. Each round must
    /// find a listener to terminate, or the drill would prove nothing.
    @Test func listenerKills() async throws {
        let report = try await Self.drill("listener_kills") { deployment in
            for round in 0..<DrillScale.current.listenerKills {
                let terminated = try await deployment.database.withConnection { connection in
                    try connection.query(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                    ).first!.decode(Int.self, at: 0)
                }
                #expect(terminated >= 1, "round \(round): no listener found to terminate")
                try await Task.sleep(for: .seconds(2))
            }
        }
        Self.expectClean(report)
    }

    /// Each instance in turn is SIGKILLed and started again: streams move through nginx, nothing
    /// is lost, nothing is sent twice.
    @Test func instancesKilledAndRestarted() async throws {
        let report = try await Self.drill("instance_sigkill_restart") { deployment in
            for cycle in 0..<DrillScale.current.instanceCycles {
                let index = cycle % 2
                try await deployment.killAndRestart(index)
                try await Task.sleep(for: .seconds(1))
            }
        }
        Self.expectClean(report)
    }

    /// SIGTERM under load: requests in flight are answered, the instance's streams end with a short
    /// `retry:`, and the process exits within its grace period.
    @Test func sigtermUnderLoad() async throws {
        let grace = 5
        try await Deployment.run(settings: ["PAYNOTIFY_SHUTDOWN_GRACE_SECONDS": "\(grace)"]) { deployment in
            let direct = deployment.direct(0)
            let order = try await direct.createOrder()
            let stream = Task { try await Self.lastItem(of: order, via: direct) }
            let answered = Counter()
            let cut = CutRequests()
            let sender = Task { await Self.sendUntilRefused(order, via: direct, answered: answered, cut: cut) }
            try await Task.sleep(for: .seconds(2))
            let signalled = ContinuousClock.now
            deployment.instance(0).signal(SIGTERM)
            let status = try await deployment.instance(0).wait()
            let exitedAfter = ContinuousClock.now - signalled
            await sender.value
            let last = try await stream.value
            // A request cut off without an answer must be one the instance never took up (it sat in
            // the kernel's accept queue when the listening socket closed): nothing of it committed.
            let cutIDs = cut.ids
            let cutButCommitted = try await deployment.database.withConnection { connection in
                try connection.query(
                    "SELECT count(*) FROM webhook_inbox WHERE provider_event_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                    [String(decoding: try JSONEncoder().encode(cutIDs), as: UTF8.self)]
                ).first!.decode(Int.self, at: 0)
            }
            var report = DrillReport(name: "sigterm_under_load")
            report.webhookAttempts = answered.count + cutIDs.count
            report.acknowledged = answered.count
            report.extra["refused_unanswered"] = "\(cutIDs.count)"
            report.extra["unanswered_but_committed"] = "\(cutButCommitted)"
            report.extra["exit_seconds"] = String(format: "%.2f", exitedAfter / .seconds(1))
            report.extra["exit_status"] = "\(status)"
            report.extra["stream_last_item"] = "\(String(describing: last))"
            report.print()
            #expect(ChildProcess.succeeded(status), "exit status \(status)")
            #expect(exitedAfter < .seconds(grace + 2))
            #expect(cutButCommitted == 0, "a request the instance committed was not answered")
            #expect(last == .retry(250))
            try await deployment.restart(0)
        }
    }

    /// Reads an order's stream to its end and returns the last item.
    private static func lastItem(of order: CreatedOrder, via client: LoopbackHTTPClient) async throws
        -> EventStreamParser.Item?
    {
        try await client.stream(path: order.streamPath, deadline: .now() + .seconds(30)) { reader in
            var last: EventStreamParser.Item?
            while let item = try await reader.next() { last = item }
            return last
        }
    }

    /// Eight senders of webhooks straight at one instance, each until the instance refuses it. A
    /// request sent and then closed without an answer counts as `cut`.
    private static func sendUntilRefused(
        _ order: CreatedOrder,
        via client: LoopbackHTTPClient,
        answered: Counter,
        cut: CutRequests
    ) async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while true {
                        let eventID = "sigterm-\(UUID().uuidString)"
                        do {
                            let status = try await client.sandbox(
                                "progress",
                                order: order.id,
                                eventID: eventID,
                                progress: 1
                            ).status
                            answered.increment()
                            if status == 503 { return }
                        } catch is LoopbackHTTPClient.ClientError {
                            cut.add(eventID)
                            return
                        } catch {
                            return  // refused: the instance no longer accepts connections
                        }
                    }
                }
            }
        }
    }
}

/// The event ids of requests whose connection closed before an answer.
final class CutRequests: Sendable {
    private let collected = Mutex<[String]>([])

    func add(_ id: String) { self.collected.withLock { $0.append(id) } }

    var ids: [String] { self.collected.withLock { $0 } }
}
