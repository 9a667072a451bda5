import Hummingbird
import Payments
import Postgres
import SSEGateway
import Storage

/// `GET /metrics`: the Prometheus text exposition of ``ServiceMetrics``. Unauthenticated, like most
/// scrape endpoints: keep it off the public side of the proxy (`deploy/nginx.conf` does).
struct MetricsController {
    let metrics: ServiceMetrics
    let hub: StreamHub
    let ops: OpsFeed
    let pool: ConnectionPool
    let listener: NotificationListener
    let merchantWebhooks: MerchantWebhookStore
    let orders: OrderStore
    /// The providers the reconciler asks: each gets its backlog series.
    let reconciled: [Provider]

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/metrics") { _, _ in
            // Read from the database: a scrape while it is down still answers, without these series.
            let endpoints = try? await self.merchantWebhooks.endpointHealth(limit: 200)
            let reconciliation =
                self.reconciled.isEmpty ? [] : try? await self.orders.reconciliationBacklog(providers: self.reconciled)
            let text = self.metrics.exposition(
                hub: self.hub,
                ops: self.ops,
                pool: self.pool,
                listener: self.listener,
                endpoints: endpoints,
                reconciliation: reconciliation
            )
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: text))
            )
        }
    }
}
