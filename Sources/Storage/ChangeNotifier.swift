import Foundation
public import Logging
public import Postgres
public import ServiceLifecycle
import Synchronization

/// Tells every instance, with NOTIFY on ``OrderStore/notificationChannel``, which orders' event
/// logs grew: after their transactions committed, from one task, coalesced.
///
/// Why not `pg_notify` inside each transaction: PostgreSQL keeps notifications in commit order,
/// so a committing transaction that has notified holds a global lock, and such commits run one at
/// a time (measured in BENCHMARKS.md). Here the webhook's transaction commits without it; the
/// order id is handed to this notifier, which sends one NOTIFY for every order that changed while
/// the previous NOTIFY was on its way. The payload names orders only (``Announcement``): the log
/// is the truth, and the relays read it.
///
/// After each NOTIFY the notifier waits ``minimumInterval`` before the next, so what is announced
/// meanwhile shares it: every NOTIFY wakes every instance's listener and relay, and an uncoalesced
/// stream of them (about 850 a second for 1,650 webhooks a second at 8 concurrent, two orders
/// each) cost the server and PostgreSQL 8–10% of their CPU per webhook (BENCHMARKS.md, item 18).
/// An announcement after a quiet spell goes out at once; this instance's own streams never wait
/// for it (the committed events are handed to its hub directly); other instances' streams get
/// an event up to that much later.
///
/// A notification can still be lost (this process dies between the commit and the NOTIFY, or the
/// database is unreachable for longer than the retries): every relay re-reads the log of the
/// orders it watches every few seconds, so such an event is late, never lost.
public final class ChangeNotifier: Service, Sendable {

    private let pool: ConnectionPool
    /// The least time between two NOTIFYs.
    public let minimumInterval: Duration
    private let logger: Logger
    /// Orders announced since the last NOTIFY.
    private let pending = Mutex<Set<String>>([])
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - pool: the connection(s) NOTIFY goes out on; a pool of its own, so that a busy main pool
    ///     cannot hold notifications back.
    ///   - minimumInterval: the least time between two NOTIFYs; what is announced meanwhile waits
    ///     for the next one.
    public init(pool: ConnectionPool, minimumInterval: Duration = .milliseconds(2), logger: Logger) {
        self.pool = pool
        self.minimumInterval = minimumInterval
        self.logger = logger
        (self.doorbell, self.ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues orders whose logs grew in a transaction that has committed. Never waits.
    public func announce(_ orderIDs: some Sequence<String>) {
        self.pending.withLock { $0.formUnion(orderIDs) }
        self.ring.yield()
    }

    /// Sends what is queued once the previous NOTIFY returned and ``minimumInterval`` passed, until
    /// graceful shutdown; then sends what is left once more and returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in self.doorbell {
                await self.sendPending(retrying: true)
                // Cancelled at shutdown's end only; what is pending then is sent below.
                try? await Task.sleep(for: self.minimumInterval)
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        await self.sendPending(retrying: false)
    }

    private func sendPending(retrying: Bool) async {
        var delay = Duration.milliseconds(50)
        while true {
            let orders = self.pending.withLock { pending in
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            guard !orders.isEmpty else { return }
            do {
                let payloads = Announcement.payloads(for: orders.sorted(), maximumBytes: OrderStore.maximumPayloadBytes)
                try await self.pool.withConnection { connection in
                    try OrderStore.notify(payloads, on: connection)
                }
                return
            } catch {
                // Put them back: newer announcements may have joined meanwhile, and one NOTIFY covers all.
                self.pending.withLock { $0.formUnion(orders) }
                self.logger.warning(
                    "NOTIFY failed; the relays' periodic re-read covers these orders meanwhile",
                    metadata: ["error": "\(error)", "orders": "\(orders.count)", "retry_in": "\(delay)"]
                )
                guard retrying, (try? await Task.sleep(for: delay)) != nil else { return }
                delay = min(delay * 2, .seconds(2))
            }
        }
    }
}
