import Foundation
import Postgres
import SSEGateway
import ServiceLifecycle
import Storage
import Synchronization

/// Webhook answers by outcome (`applied`, `duplicate`, `invalid_signature`, `not_recorded`…), counted
/// per interval for the ops stream's stats.
final class WebhookCounters: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func record(_ outcome: String) {
        self.counts.withLock { $0[outcome, default: 0] += 1 }
    }

    /// The interval's counts; starts the next interval.
    func drain() -> [String: Int] {
        self.counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
    }
}

/// Publishes an `event: stats` on the ops stream every interval: this instance's open streams,
/// webhooks per second by outcome, commit-to-delivery latency over the interval, and the
/// listener's state; and every ``endpointsEvery`` intervals an `event: endpoints`, each merchant
/// webhook endpoint's health (one query, so not every second).
struct OpsStatsReporter: Service {
    let ops: OpsFeed
    let hub: StreamHub
    let latency: DeliveryLatency
    let webhooks: WebhookCounters
    let listener: NotificationListener
    let merchantWebhooks: MerchantWebhookStore
    let instance: String
    let interval: Duration

    static let endpointsEvery = 5

    private struct Stats: Encodable {
        struct Latency: Encodable {
            let count: Int
            let p50: Double?
            let p99: Double?
            let max: Double?
        }

        let instance: String
        let openStreams: Int
        let opsStreams: Int
        let droppedStreams: Int
        let webhooksPerSecond: [String: Double]
        let deliveryLatencyMs: Latency
        let listener: String

        enum CodingKeys: String, CodingKey {
            case instance, listener
            case openStreams = "open_streams"
            case opsStreams = "ops_streams"
            case droppedStreams = "dropped_streams"
            case webhooksPerSecond = "webhooks_per_second"
            case deliveryLatencyMs = "delivery_latency_ms"
        }
    }

    /// One endpoint on the ops page.
    private struct EndpointHealth: Encodable {
        let id: String
        let url: String
        let enabled: Bool
        let failingSince: String?
        let lastSuccessAt: String?
        let backlog: Int
        let oldestPendingSeconds: Double?

        init(_ health: WebhookEndpointHealth) {
            self.id = health.id
            self.url = health.url
            self.enabled = health.enabled
            self.failingSince = health.failingSince.map(ResponseJSON.timestamp)
            self.lastSuccessAt = health.lastSuccessAt.map(ResponseJSON.timestamp)
            self.backlog = health.backlog
            self.oldestPendingSeconds = health.oldestPendingSeconds
        }

        enum CodingKeys: String, CodingKey {
            case id, url, enabled, backlog
            case failingSince = "failing_since"
            case lastSuccessAt = "last_success_at"
            case oldestPendingSeconds = "oldest_pending_seconds"
        }
    }

    func run() async throws {
        let clock = ContinuousClock()
        var intervalStart = clock.now
        var ticks = 0
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: self.interval) })) != nil {
            let now = clock.now
            let elapsed = (now - intervalStart) / .seconds(1)
            intervalStart = now
            let summary = self.latency.drain()
            let stats = Stats(
                instance: self.instance,
                openStreams: self.hub.openStreams,
                opsStreams: self.ops.openStreams,
                droppedStreams: self.hub.droppedStreams,
                webhooksPerSecond: self.webhooks.drain().mapValues { elapsed > 0 ? Double($0) / elapsed : 0 },
                deliveryLatencyMs: .init(count: summary.count, p50: summary.p50, p99: summary.p99, max: summary.max),
                listener: self.listener.isListening ? "listening" : "reconnecting"
            )
            self.ops.publish(ServerSentEvent(event: "stats", data: JSONBody.text(of: stats) ?? "{}"), background: true)
            ticks += 1
            if ticks % Self.endpointsEvery == 0, self.ops.openStreams > 0,
                let health = try? await self.merchantWebhooks.endpointHealth(limit: 200)
            {
                let endpoints = health.map(EndpointHealth.init)
                self.ops.publish(
                    ServerSentEvent(event: "endpoints", data: JSONBody.text(of: ["endpoints": endpoints]) ?? "{}"),
                    background: true
                )
            }
        }
    }
}
