import Metrics
import Payments
import Postgres
import Prometheus
import SSEGateway
import Storage
import Synchronization

/// The service's Prometheus metrics (`GET /metrics`), recorded through swift-metrics into a
/// registry of this application's own (not the process-wide `MetricsSystem`, so several
/// applications in one process, as in the tests, never share counts).
///
/// Events are counted as they happen; levels (open streams, the pool, the listener) are read from
/// their owners when the metrics are scraped. Every series known in advance (webhooks by provider
/// and outcome, stream refusals by reason, streams opened by kind) is exported at 0 from the
/// start, so that dashboards and alert rules see it before the first event: a `rate()` over a
/// series that appears only with its first increment misses that increment.
final class ServiceMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: Metrics.Counter]>([:])
    private let webhookTimers = Mutex<[String: Timer]>([:])
    private let deliveryLatency: Timer
    /// What the pulled counters had reached at the last scrape (they only grow).
    private let scraped = Mutex<(reconnects: Int, dropped: Int)>((0, 0))
    /// The merchant endpoints the last scrape reported, so one deleted since reads 0, not its last value.
    private let reportedEndpoints = Mutex<Set<String>>([])

    /// - Parameters:
    ///   - providers: the providers served: each gets its webhook series.
    ///   - webhookOutcomes: every outcome a webhook can be counted with.
    ///   - streamRefusals: every reason a stream request can be refused for.
    ///   - reconciled: the providers the reconciler asks: each gets its provider-call series.
    init(providers: [String], webhookOutcomes: [String], streamRefusals: [String], reconciled: [String] = []) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        self.deliveryLatency = Timer(label: "paynotify_delivery_latency_seconds", dimensions: [], factory: factory)
        for provider in providers {
            for outcome in webhookOutcomes { _ = self.webhookCounter(provider: provider, outcome: outcome) }
            _ = self.webhookTimer(provider: provider)
        }
        for kind in ["order", "ops"] { _ = self.counter("paynotify_streams_opened_total", [("kind", kind)]) }
        for reason in streamRefusals { _ = self.counter("paynotify_streams_refused_total", [("reason", reason)]) }
        for outcome in ["delivered", "failed"] {
            _ = self.counter("paynotify_merchant_webhook_attempts_total", [("outcome", outcome)])
        }
        for provider in reconciled {
            _ = self.counter("paynotify_callbacks_missing_total", [("provider", provider)])
            for operation in ["query", "close"] {
                for result in ["answered", "unavailable", "rate_limited", "unverified", "rejected"] {
                    _ = self.counter(
                        "paynotify_provider_calls_total",
                        [("provider", provider), ("operation", operation), ("result", result)]
                    )
                }
            }
        }
        _ = self.counter("paynotify_listener_reconnects_total", [])
        _ = self.counter("paynotify_streams_dropped_total", [])
    }

    // MARK: Counted as they happen

    /// A webhook answered: its provider, outcome (`applied`, `duplicate`, `invalid_signature`…) and
    /// handling time.
    func webhookHandled(provider: String, outcome: String, duration: Duration) {
        self.webhookCounter(provider: provider, outcome: outcome).increment()
        self.webhookTimer(provider: provider).recordNanoseconds(duration.nanoseconds)
    }

    private func webhookCounter(provider: String, outcome: String) -> Metrics.Counter {
        self.counter("paynotify_webhooks_total", [("provider", provider), ("outcome", outcome)])
    }

    private func webhookTimer(provider: String) -> Timer {
        self.webhookTimers.withLock { timers in
            if let timer = timers[provider] { return timer }
            let timer = Timer(
                label: "paynotify_webhook_duration_seconds",
                dimensions: [("provider", provider)],
                factory: self.factory
            )
            timers[provider] = timer
            return timer
        }
    }

    /// A stream (`order` or `ops`) was opened.
    func streamOpened(kind: String) {
        self.counter("paynotify_streams_opened_total", [("kind", kind)]).increment()
    }

    /// A stream request was refused, by the code of its answer (`invalid_token`, `streams_full`…).
    func streamRefused(reason: String) {
        self.counter("paynotify_streams_refused_total", [("reason", reason)]).increment()
    }

    /// An attempt to deliver a merchant webhook ended `delivered` (2xx) or `failed`.
    func merchantWebhookAttempt(outcome: String) {
        self.counter("paynotify_merchant_webhook_attempts_total", [("outcome", outcome)]).increment()
    }

    /// A reconciler's call to a provider's API (`query`, `close`) ended: `answered` (verified),
    /// `unavailable`, `rate_limited`, `unverified`, `rejected` or `no_reference`.
    func providerCall(provider: Provider, operation: String, result: String) {
        self.counter(
            "paynotify_provider_calls_total",
            [("provider", provider.rawValue), ("operation", operation), ("result", result)]
        ).increment()
    }

    /// A query found an order's outcome that no callback had reported (`callback_missing`).
    func paymentFoundByQuery(provider: Provider) {
        self.counter("paynotify_callbacks_missing_total", [("provider", provider.rawValue)]).increment()
    }

    /// An event reached a stream this long after its transaction began.
    func delivered(after seconds: Double) {
        self.deliveryLatency.recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    // MARK: Scraped

    /// The Prometheus text exposition, with the levels read now.
    ///
    /// - Parameter endpoints: each merchant webhook endpoint's health, or `nil` when the database
    ///   could not say (those series then keep their last values).
    /// - Parameter reconciliation: each reconciled provider's backlog, or `nil` likewise.
    func exposition(
        hub: StreamHub,
        ops: OpsFeed,
        pool: ConnectionPool,
        listener: NotificationListener,
        endpoints: [WebhookEndpointHealth]?,
        reconciliation: [ReconciliationBacklog]?
    ) -> [UInt8] {
        if let endpoints { self.recordEndpoints(endpoints) }
        for backlog in reconciliation ?? [] {
            let dimensions = [("provider", backlog.provider.rawValue)]
            Metrics.Gauge(label: "paynotify_reconcile_due", dimensions: dimensions, factory: self.factory)
                .record(backlog.due)
            Metrics.Gauge(
                label: "paynotify_reconcile_oldest_due_seconds",
                dimensions: dimensions,
                factory: self.factory
            )
            .record(backlog.oldestDueSeconds)
        }
        let levels: [(String, [(String, String)], Int)] = [
            ("paynotify_streams_open", [("kind", "order")], hub.openStreams),
            ("paynotify_streams_open", [("kind", "ops")], ops.openStreams),
            ("paynotify_db_pool_in_use", [], pool.statistics.inUse),
            ("paynotify_db_pool_idle", [], pool.statistics.idle),
            ("paynotify_db_pool_waiting", [], pool.statistics.waiting),
            ("paynotify_listener_up", [], listener.isListening ? 1 : 0),
            // The scrape's own reads of the database: whether it answered just now.
            ("paynotify_database_up", [], endpoints == nil ? 0 : 1),
        ]
        for (label, dimensions, value) in levels {
            Metrics.Gauge(label: label, dimensions: dimensions, factory: self.factory).record(value)
        }
        let reconnects = max(0, listener.connectionsMade - 1)
        let dropped = hub.droppedStreams
        let (newReconnects, newDrops) = self.scraped.withLock { last in
            defer { last = (max(last.reconnects, reconnects), max(last.dropped, dropped)) }
            return (max(0, reconnects - last.reconnects), max(0, dropped - last.dropped))
        }
        self.counter("paynotify_listener_reconnects_total", []).increment(by: newReconnects)
        self.counter("paynotify_streams_dropped_total", []).increment(by: newDrops)
        return self.registry.emitToBuffer()
    }

    /// Per endpoint: messages not delivered yet, and how long the oldest has waited.
    private func recordEndpoints(_ endpoints: [WebhookEndpointHealth]) {
        let current = Set(endpoints.map(\.id))
        let gone = self.reportedEndpoints.withLock { reported in
            defer { reported = current }
            return reported.subtracting(current)
        }
        let values =
            endpoints.map { ($0.id, $0.backlog, $0.oldestPendingSeconds ?? 0) } + gone.map { ($0, 0, 0) }
        for (id, backlog, oldest) in values {
            let dimensions = [("endpoint", id)]
            Metrics.Gauge(label: "paynotify_merchant_webhook_backlog", dimensions: dimensions, factory: self.factory)
                .record(backlog)
            Metrics.Gauge(
                label: "paynotify_merchant_webhook_oldest_pending_seconds",
                dimensions: dimensions,
                factory: self.factory
            ).record(oldest)
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Metrics.Counter {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1}")
        return self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(label: label, dimensions: dimensions, factory: self.factory)
            counters[key] = counter
            return counter
        }
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
    }
}
