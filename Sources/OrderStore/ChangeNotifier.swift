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
/// A notification can still be lost (this process dies between the commit and the NOTIFY, or the
/// database is unreachable for longer than the retries): every relay re-reads the log of the
/// orders it watches every few seconds, so such an event is late, never lost.
public final class ChangeNotifier: Service, Sendable {
    private struct State {
        var pending: Set<String> = []
        var isStopping = false
    }

    private let pool: ConnectionPool
    private let logger: Logger
    private let state = Mutex(State())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    /// - Parameter pool: the connection(s) NOTIFY goes out on; a pool of its own, so that a busy
    ///   main pool cannot hold notifications back.
    public init(pool: ConnectionPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
        (self.doorbell, self.ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues orders whose logs grew in a transaction that has committed. Never waits.
    public func announce(_ orderIDs: some Sequence<String>) {
        self.state.withLock { $0.pending.formUnion(orderIDs) }
        self.ring.yield()
    }

    /// Sends what is queued as soon as the previous NOTIFY returned, until graceful shutdown; then
    /// sends what is left once more and returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in self.doorbell {
                await self.sendPending(retrying: true)
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        await self.sendPending(retrying: false)
    }

    private func sendPending(retrying: Bool) async {
        var delay = Duration.milliseconds(50)
        while true {
            let orders = self.state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
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
                self.state.withLock { $0.pending.formUnion(orders) }
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
