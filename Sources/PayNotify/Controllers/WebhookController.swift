import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PaymentProviders
import Payments
import Storage
import Synchronization

/// `POST /v1/webhooks/{provider}`: verify the raw bytes with the provider's adapter, record the
/// delivery in one transaction, and answer the way that provider expects.
///
/// A refused delivery (bad signature, stale timestamp, malformed payload) gets the provider's
/// failure answer and an alert; a database failure gets its retryable failure answer (5xx), so the
/// provider delivers again later; nothing is acknowledged that was not committed.
struct WebhookController {
    let adapters: [Provider: any WebhookAdapter]
    let store: OrderStore
    let maximumBodyBytes: Int
    /// Wall-clock time for the signatures' tolerance windows; tests inject their own.
    let now: @Sendable () -> Date
    let counters: WebhookCounters
    let metrics: ServiceMetrics
    let alertThrottle = AlertThrottle(interval: 10)

    func addRoutes(to group: RouterGroup<some RequestContext>) {
        group.post("/webhooks/{provider}") { request, context in
            try await self.receive(request, provider: try context.parameters.require("provider"), context: context)
        }
    }

    private func receive(_ request: Request, provider name: String, context: some RequestContext) async throws
        -> Response
    {
        guard let provider = Provider(rawValue: name), self.adapters[provider] != nil else {
            throw APIError(
                .notFound,
                code: "unknown_provider",
                message: "No webhook provider \"\(name)\" is configured here."
            )
        }
        let body = try await request.body.collect(upTo: self.maximumBodyBytes)
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        return try await self.handle(
            WebhookRequest(headers: headers, body: Array(buffer: body)),
            from: provider,
            logger: context.logger
        )
    }

    /// Verifies a delivery with its provider's adapter, records it in one transaction, and answers
    /// as that provider expects. The webhook route and the demo's buttons both come through here.
    ///
    /// - Precondition: an adapter is configured for `provider`.
    func handle(_ request: WebhookRequest, from provider: Provider, logger: Logger) async throws -> Response {
        let started = ContinuousClock.now
        let adapter = self.adapters[provider]!
        let delivery: WebhookDelivery
        do throws(WebhookRejection) {
            delivery = try adapter.verify(request, now: self.now())
            if let reason = OrderStore.unstorableReason(delivery) { throw WebhookRejection(.malformedPayload, reason) }
        } catch {
            logger.warning(
                "webhook refused",
                metadata: [
                    "provider": "\(provider.rawValue)", "reason": "\(error.reason.rawValue)",
                    "detail": "\(error.message)",
                ]
            )
            if self.alertThrottle.shouldRaise(key: "\(provider.rawValue).\(error.reason.rawValue)") {
                // An attacker can send refusals as fast as they like: alerts are throttled per
                // provider and reason, and failing to store one must not change the answer.
                try? await self.store.recordAlert(
                    kind: error.reason == .malformedPayload ? "malformed_webhook" : "bad_signature",
                    provider: provider,
                    orderID: nil,
                    message: "\(provider.rawValue) webhook refused: \(error)"
                )
            }
            self.count(provider, error.reason.rawValue, since: started)
            return Self.response(adapter.failure(error))
        }
        do {
            let outcome = try await self.store.record(delivery)
            logger.info(
                "webhook recorded",
                metadata: [
                    "provider": "\(provider.rawValue)", "event_id": "\(delivery.eventID)",
                    "type": "\(delivery.eventType)",
                    "order": "\(delivery.orderReference ?? "-")", "outcome": "\(outcome.rawValue)",
                ]
            )
            self.count(provider, outcome.rawValue, since: started)
            return Self.response(adapter.acknowledgement)
        } catch {
            logger.error(
                "webhook not recorded; the provider will retry",
                metadata: ["provider": "\(provider.rawValue)", "error": "\(error)"]
            )
            self.count(provider, "not_recorded", since: started)
            return Self.response(adapter.failure(nil))
        }
    }

    /// Every outcome a webhook is counted with: what recording it did, why it was refused, or
    /// `not_recorded` (the database failed; the provider retries).
    static let outcomes: [String] =
        OrderStore.DeliveryOutcome.allCases.map(\.rawValue) + WebhookRejection.Reason.allCases.map(\.rawValue)
        + ["not_recorded"]

    /// Counts an answered webhook for the metrics and the ops stream's per-second stats.
    private func count(_ provider: Provider, _ outcome: String, since started: ContinuousClock.Instant) {
        self.metrics.webhookHandled(
            provider: provider.rawValue,
            outcome: outcome,
            duration: ContinuousClock.now - started
        )
        self.counters.record(outcome)
    }

    private static func response(_ reply: WebhookReply) -> Response {
        var headers: HTTPFields = [.cacheControl: "no-store"]
        if let type = reply.contentType { headers[.contentType] = type }
        return Response(
            status: .init(code: reply.status),
            headers: headers,
            body: .init(byteBuffer: .init(bytes: reply.body))
        )
    }
}

/// Lets one alert per key through per interval, so a flood of forged requests cannot flood the
/// alerts table. Counts come from metrics and logs instead.
final class AlertThrottle: Sendable {
    private let interval: TimeInterval
    private let lastRaised = Mutex<[String: ContinuousClock.Instant]>([:])

    init(interval: TimeInterval) {
        self.interval = interval
    }

    func shouldRaise(key: String) -> Bool {
        let now = ContinuousClock.now
        return self.lastRaised.withLock { lastRaised in
            if let last = lastRaised[key], now - last < .seconds(self.interval) { return false }
            lastRaised[key] = now
            return true
        }
    }
}
