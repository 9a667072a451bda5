public import Foundation
public import Payments

/// The built-in provider for development, demos and load tests.
///
/// Header `Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
/// (several `v1=` allowed). Body: `{"id", "type", "order_id", "amount", "currency", "progress", "stage"}`
/// with `type` one of `payment.processing`, `payment.progress`, `payment.succeeded`,
/// `payment.failed`, `payment.canceled`, `payment.refunded`. Unknown types are acknowledged and ignored.
public struct SandboxAdapter: WebhookAdapter {
    public let provider = Provider.sandbox
    private let signature: TimestampedSignature

    public init(secrets: [String], tolerance: TimeInterval) {
        self.signature = TimestampedSignature(secrets: secrets, tolerance: tolerance)
    }

    public func verify(_ request: WebhookRequest, now: Date) throws(WebhookRejection) -> WebhookDelivery {
        try self.signature.verify(header: request.header("sandbox-signature"), body: request.body, now: now)
        let payload = try decodePayload(Payload.self, from: request.body, what: "a sandbox event")
        guard !payload.id.isEmpty, payload.id.count <= 255 else {
            throw WebhookRejection(.malformedPayload, "id must be 1–255 characters")
        }
        let kind: PaymentEvent.Kind? =
            switch payload.type {
            case "payment.processing": .processing
            case "payment.progress": .progress
            case "payment.succeeded": .succeeded
            case "payment.failed": .failed
            case "payment.canceled": .canceled
            case "payment.refunded": .refunded
            default: nil
            }
        if let progress = payload.progress, !(0...100).contains(progress) {
            throw WebhookRejection(.malformedPayload, "progress must be 0–100")
        }
        let paid: Money? =
            switch (payload.amount, payload.currency) {
            case (let amount?, let currency?): Money(amount: amount, currency: currency.uppercased())
            default: nil
            }
        return WebhookDelivery(
            provider: .sandbox,
            eventID: payload.id,
            eventType: payload.type,
            orderReference: payload.orderID,
            event: kind.map {
                PaymentEvent(
                    kind: $0,
                    paid: paid,
                    percent: payload.progress,
                    stage: payload.stage,
                    message: payload.message
                )
            },
            rawBody: request.body
        )
    }

    public var acknowledgement: WebhookReply { .json(200, #"{"received":true}"#) }

    public func failure(_ rejection: WebhookRejection?) -> WebhookReply { self.jsonFailure(rejection) }

    /// The body's fields; the ``DeliverySimulator`` encodes the same type.
    struct Payload: Codable {
        let id: String
        let type: String
        let orderID: String?
        let amount: Int64?
        let currency: String?
        let progress: Int?
        let stage: String?
        let message: String?

        enum CodingKeys: String, CodingKey {
            case id, type, amount, currency, progress, stage, message
            case orderID = "order_id"
        }
    }
}
