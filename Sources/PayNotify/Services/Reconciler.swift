import Foundation
import Logging
import Payments
import ProviderAPIs
import ServiceLifecycle
import Storage
import Synchronization

/// Asks the providers about open orders whose callbacks have not come, and closes payments at the
/// provider before their orders expire or are canceled: the ``ReconciliationRules``, with
/// the providers that have API credentials (`clients`).
///
/// Every instance runs one. Each order's step is claimed in the database (``OrderStore/claimReconciliations(providers:limit:lease:)``:
/// `FOR UPDATE SKIP LOCKED`, then a lease), so one instance at a time asks about it, never while
/// a callback for it is being applied; what the provider says is verified by its client, then
/// recorded exactly as a callback would be (``OrderStore/record(_:)``, source `query`): the same
/// state machine and checks decide, so a callback that arrives after is a harmless repeat and
/// nothing reaches a stream twice. A step that dies with its instance is taken again when its
/// lease ends: at worst the provider is asked twice.
final class Reconciler: Service, Sendable {
    struct Settings: Sendable {
        var rules: ReconciliationRules
        /// How soon after creation each provider accepts a close (WeChat Pay: 5 minutes).
        var closeNotBefore: [Provider: Duration]
        /// Orders worked on at once by this instance (each waits on its provider's rate limit).
        var concurrency: Int
        /// How long a claimed order is held: longer than a step can take (a query and a close,
        /// each with its retries), so a live instance's step is not taken twice.
        var lease: Duration
        /// How often to look for due orders when nothing wakes it sooner.
        var idleCheck: Duration
    }

    let clients: [Provider: any ProviderClient]
    /// The clients' HTTP client, shut down when the reconciler stops.
    let http: ProviderHTTP
    let store: OrderStore
    let settings: Settings
    /// Signalled when a merchant's cancel starts closing an order, so it is taken at once.
    let wakeup: Wakeup
    let metrics: ServiceMetrics
    let logger: Logger
    let now: @Sendable () -> Date
    /// When each provider was last reported unavailable (`provider_unavailable`, at most every 5 minutes).
    private let outages = Mutex<[Provider: Date]>([:])

    init(
        clients: [Provider: any ProviderClient],
        http: ProviderHTTP,
        store: OrderStore,
        settings: Settings,
        wakeup: Wakeup,
        metrics: ServiceMetrics,
        logger: Logger,
        now: @escaping @Sendable () -> Date
    ) {
        self.clients = clients
        self.http = http
        self.store = store
        self.settings = settings
        self.wakeup = wakeup
        self.metrics = metrics
        self.logger = logger
        self.now = now
    }

    func run() async throws {
        if self.clients.isEmpty {
            // Nothing to ask, but a service that returns ends the whole group: wait for the end.
            try? await gracefulShutdown()
        } else {
            await self.reconcile()
        }
        try? await self.http.shutdown()
    }

    private func reconcile() async {
        let providers = self.clients.keys.sorted { $0.rawValue < $1.rawValue }
        let inFlight = Shared(0)
        let stopping = Shared(false)
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                while !Task.isCancelled, !stopping.withLock({ $0 }) {
                    let room = self.settings.concurrency - inFlight.withLock { $0 }
                    var claims: [ReconciliationClaim] = []
                    if room > 0 {
                        do {
                            claims = try await self.store.claimReconciliations(
                                providers: providers,
                                limit: room,
                                lease: self.settings.lease
                            )
                        } catch {
                            self.logger.warning("could not claim orders to reconcile", metadata: ["error": "\(error)"])
                        }
                    }
                    for claim in claims {
                        inFlight.withLock { $0 += 1 }
                        group.addTask {
                            await self.step(claim)
                            inFlight.withLock { $0 -= 1 }
                            self.wakeup.signal()
                        }
                    }
                    // A full claim means more may be due: look again at once.
                    if room > 0 && claims.count == room { continue }
                    await self.wakeup.wait(timeout: self.settings.idleCheck)
                }
            } onGracefulShutdown: {
                stopping.withLock { $0 = true }
                self.wakeup.signal()
            }
            // Steps in flight are abandoned: their leases run out and another instance (or this
            // one, back) takes them again, asking the provider once more.
            group.cancelAll()
        }
    }

    // MARK: One order's step

    private func step(_ claim: ReconciliationClaim) async {
        let order = claim.order
        guard let client = self.clients[order.provider] else { return }
        let trade = TradeReference(
            orderID: order.id,
            paymentID: order.providerReference,
            merchantOrderID: order.merchantOrderID
        )
        do {
            let answer: TradeQueryResult
            do {
                answer = try await client.query(trade, now: self.now())
                self.metrics.providerCall(provider: order.provider, operation: "query", result: "answered")
            } catch {
                // Shutting down: the step is left to its lease, and no outage is reported.
                if Task.isCancelled { return }
                return try await self.failed(claim, operation: "query", error)
            }
            switch self.settings.rules.afterQuery(answer.event, closing: claim.closing?.reason) {
            case .record(let event):
                try await self.record(answer, event: event, order: order)
                if claim.closing != nil { try await self.store.stopClosing(orderID: order.id) }
                try await self.scheduleNext(claim)
            case .schedule:
                try await self.scheduleNext(claim)
            case .finish:
                try await self.finish(claim, alert: nil)
            case .close:
                try await self.close(claim, client: client, trade: trade)
            }
        } catch {
            // The database (or shutdown): the lease runs out and the step is taken again.
            if Task.isCancelled { return }
            self.logger.warning(
                "reconciliation step not recorded; it is retried after its lease",
                metadata: ["order": "\(order.id)", "error": "\(error)"]
            )
        }
    }

    /// Records what a query found as a delivery of its own kind (the inbox's `source` is `query`).
    private func record(_ answer: TradeQueryResult, event: PaymentEvent, order: Order) async throws {
        let delivery = WebhookDelivery(
            provider: order.provider,
            eventID: "query:" + UUID().uuidString.lowercased(),
            eventType: "query." + answer.providerState,
            orderReference: order.id,
            event: event,
            rawBody: answer.rawBody,
            source: .query
        )
        if let reason = OrderStore.unstorableReason(delivery) {
            self.logger.warning(
                "query answer cannot be stored",
                metadata: ["order": "\(order.id)", "reason": "\(reason)"]
            )
            return
        }
        let outcome = try await self.store.record(delivery)
        if outcome == .applied, event.kind != .processing {
            self.metrics.paymentFoundByQuery(provider: order.provider)
        }
    }

    private func scheduleNext(_ claim: ReconciliationClaim) async throws {
        let next = self.settings.rules.nextQuery(
            createdAt: claim.order.createdAt,
            expiresAt: claim.order.expiresAt,
            status: claim.order.status,
            queriesMade: claim.queriesMade + 1,
            now: self.now()
        )
        try await self.store.scheduleReconciliation(orderID: claim.order.id, at: next.at, queriesMade: next.queriesMade)
    }

    /// Closes the payment at the provider (once the provider allows it), then ends the order.
    private func close(_ claim: ReconciliationClaim, client: any ProviderClient, trade: TradeReference) async throws {
        let order = claim.order
        let now = self.now()
        if let notBefore = self.settings.closeNotBefore[order.provider] {
            let allowed = order.createdAt.addingTimeInterval(notBefore.timeInterval)
            if now < allowed {
                return try await self.store.scheduleReconciliation(
                    orderID: order.id,
                    at: allowed,
                    queriesMade: claim.queriesMade
                )
            }
        }
        let result: CloseResult
        do {
            result = try await client.close(trade, now: now)
            self.metrics.providerCall(provider: order.provider, operation: "close", result: "answered")
        } catch {
            if Task.isCancelled { return }
            return try await self.failed(claim, operation: "close", error)
        }
        switch result {
        case .closed, .notFound:
            try await self.finish(claim, alert: nil)
        case .refused(let code):
            // Paid or paying meanwhile: the next step's query says which.
            self.logger.info("close refused; asking again", metadata: ["order": "\(order.id)", "code": "\(code)"])
            try await self.retryClosing(claim, retryAfter: nil, reason: "the close was refused (\(code))")
        }
    }

    /// Ends a closing order for its reason (expired, canceled), unless a payment changed it meanwhile.
    private func finish(_ claim: ReconciliationClaim, alert: String?) async throws {
        guard let closing = claim.closing else { return }
        _ = try await self.store.finishClosing(orderID: claim.order.id, reason: closing.reason, alert: alert)
    }

    private func retryClosing(_ claim: ReconciliationClaim, retryAfter: Duration?, reason: String) async throws {
        guard let closing = claim.closing else { return }
        if let next = self.settings.rules.retryClosing(since: closing.since, now: self.now(), retryAfter: retryAfter) {
            try await self.store.scheduleReconciliation(
                orderID: claim.order.id,
                at: next,
                queriesMade: claim.queriesMade
            )
        } else {
            try await self.finish(
                claim,
                alert:
                    "could not close the payment at \(claim.order.provider.rawValue) for \(Int(self.settings.rules.closeGiveUp.timeInterval)) s (\(reason)); the order was \(closing.reason.rawValue) anyway, and a payment that still arrives is reported as paid_after_final"
            )
        }
    }

    /// A call got no verified answer: nothing about the payment changes. A closing order tries
    /// again with growing waits until it gives up; a scheduled query waits for its next step.
    private func failed(_ claim: ReconciliationClaim, operation: String, _ error: any Error) async throws {
        let order = claim.order
        let callError = error as? ProviderCallError ?? .unavailable("\(error)", retryAfter: nil)
        let retryAfter: Duration?
        switch callError {
        case .unavailable(_, let after):
            retryAfter = after
            self.metrics.providerCall(provider: order.provider, operation: operation, result: "unavailable")
            await self.reportOutage(order.provider, callError)
        case .rateLimited(let after):
            retryAfter = after
            self.metrics.providerCall(provider: order.provider, operation: operation, result: "rate_limited")
        case .unverified(let message):
            retryAfter = nil
            self.metrics.providerCall(provider: order.provider, operation: operation, result: "unverified")
            try await self.store.recordAlert(
                kind: "unverified_provider_response",
                provider: order.provider,
                orderID: order.id,
                message: "\(operation) answer for \(order.id) does not verify: \(message); nothing was changed"
            )
        case .rejected:
            retryAfter = nil
            self.metrics.providerCall(provider: order.provider, operation: operation, result: "rejected")
            self.logger.error(
                "provider refused the request; check the API credentials",
                metadata: ["provider": "\(order.provider.rawValue)", "error": "\(callError)"]
            )
        case .noReference(let message):
            self.metrics.providerCall(provider: order.provider, operation: operation, result: "no_reference")
            // Nothing to ask with: a scheduled query waits for a webhook to name the payment; a
            // closing order ends now, reported, since waiting cannot help.
            if claim.closing != nil {
                return try await self.finish(
                    claim,
                    alert:
                        "not closed at \(order.provider.rawValue): \(message); a payment that still arrives is reported as paid_after_final"
                )
            }
            return try await self.scheduleNext(claim)
        }
        if claim.closing != nil {
            try await self.retryClosing(claim, retryAfter: retryAfter, reason: callError.description)
        } else {
            try await self.scheduleNext(claim)
        }
    }

    /// Raises `provider_unavailable` for a provider that gives no answer, at most every 5 minutes.
    private func reportOutage(_ provider: Provider, _ error: ProviderCallError) async {
        let now = self.now()
        let due = self.outages.withLock { outages in
            guard now.timeIntervalSince(outages[provider] ?? .distantPast) >= 300 else { return false }
            outages[provider] = now
            return true
        }
        guard due else { return }
        try? await self.store.recordAlert(
            kind: "provider_unavailable",
            provider: provider,
            orderID: nil,
            message: "\(provider.rawValue) API: \(error.description); reconciliation of its orders is delayed"
        )
    }
}
