import Logging
import Payments
import ServiceLifecycle
import Storage

/// Turns pending orders past their deadline into `expired`, every `interval`, until shutdown;
/// except the orders of `reconciled` providers, which the ``Reconciler`` expires once it has
/// closed their payments at the provider.
///
/// Every instance runs one; the store's `FOR UPDATE SKIP LOCKED` hands each order to one of them.
/// A failed sweep (database down) is logged and tried again at the next tick.
struct ExpirySweeper: Service {
    let store: OrderStore
    let interval: Duration
    let batchSize: Int
    let reconciled: [Provider]
    let logger: Logger

    func run() async throws {
        while true {
            do {
                // A full batch means more may be due: sweep again at once.
                while try await self.store.expireDueOrders(limit: self.batchSize, reconciled: self.reconciled)
                    == self.batchSize
                {}
            } catch {
                self.logger.warning("expiry sweep failed; retrying at the next tick", metadata: ["error": "\(error)"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return  // graceful shutdown or cancellation
            }
        }
    }
}
