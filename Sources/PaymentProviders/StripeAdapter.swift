public import Foundation
public import Payments

/// Stripe webhooks (`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…][,v0=…]`).
///
/// The signed text is `"<t>.<raw body>"`, keyed with the endpoint secret's UTF-8 bytes, `whsec_`
/// prefix included. During a secret roll Stripe sends one `v1` per active secret; any match is
/// enough. `v0` and other schemes are ignored (downgrade protection).
///
/// Events acted on, all resolved to an order through `data.object.metadata.order_id`:
/// - `payment_intent.processing` → processing;
/// - `payment_intent.succeeded` → succeeded, paid = `amount_received` (what was actually
///   collected, not `amount`) in `currency` upper-cased (Stripe sends `usd`);
/// - `payment_intent.payment_failed` → failed, with `last_payment_error.message`;
/// - `payment_intent.canceled` → canceled;
/// - `charge.refunded` → refunded, only when the charge is fully refunded.
///
/// Every other type is acknowledged and ignored. The event `id` is the same on every retry and is
/// the idempotency key.
///
/// - Note: The timestamp window is enforced in both directions. Stripe's SDKs reject only stale
///   timestamps and accept any future one; refusing the future too is our product requirement,
///   sound as long as the host clock is NTP-synced. Stripe signs every delivery attempt afresh,
///   so a retry is never refused for its age.
/// - Note: A Charge's `metadata` is not copied from its PaymentIntent. For `charge.refunded` to
///   find the order, the checkout must put `order_id` on the charge as well (for example through
///   `payment_intent_data.metadata`); otherwise the delivery is recorded under no order.
public struct StripeAdapter: WebhookAdapter {
    public let provider = Provider.stripe
    private let signature: TimestampedSignature

    /// - Parameters:
    ///   - secrets: endpoint signing secrets (`whsec_…`) as shown by Stripe; several while one is rolled.
    ///   - tolerance: how far the signed `t` may be from now, in seconds, either way (Stripe's SDKs use 300).
    public init(secrets: [String], tolerance: TimeInterval) {
        self.signature = TimestampedSignature(secrets: secrets, tolerance: tolerance)
    }

    public func verify(_ request: WebhookRequest, now: Date) throws(WebhookRejection) -> WebhookDelivery {
        try self.signature.verify(header: request.header("stripe-signature"), body: request.body, now: now)
        let envelope = try decodePayload(Envelope.self, from: request.body, what: "a Stripe event")
        guard !envelope.id.isEmpty, envelope.id.count <= 255 else {
            throw WebhookRejection(.malformedPayload, "id must be 1–255 characters")
        }
        let orderReference: String?
        let event: PaymentEvent?
        var paymentReference: String?
        switch envelope.type {
        case "payment_intent.processing", "payment_intent.succeeded", "payment_intent.payment_failed",
            "payment_intent.canceled":
            let intent = try decodePayload(Event<StripePaymentIntent>.self, from: request.body, what: "a Stripe event")
                .data
                .object
            orderReference = intent.metadata?["order_id"]
            paymentReference = intent.id.flatMap { (1...255).contains($0.unicodeScalars.count) ? $0 : nil }
            event =
                switch envelope.type {
                case "payment_intent.processing": PaymentEvent(kind: .processing)
                case "payment_intent.succeeded": PaymentEvent(kind: .succeeded, paid: intent.amountReceived)
                case "payment_intent.payment_failed":
                    // One attempt failed: the PaymentIntent returns to requires_payment_method and
                    // the customer may try another card. Ending the order here would show a
                    // failure, end the stream, and then see the retry succeed "after" it; so it is
                    // progress the page can show. Only payment_intent.canceled ends a Stripe order.
                    PaymentEvent(kind: .progress, stage: "payment_failed", message: intent.lastPaymentError?.message)
                default: PaymentEvent(kind: .canceled)
                }
        case "charge.refunded":
            let charge = try decodePayload(Event<Charge>.self, from: request.body, what: "a Stripe event").data.object
            orderReference = charge.metadata?["order_id"]
            // `charge.refunded` fires for partial refunds too; `refunded` turns true only once the
            // whole charge is given back. A partial refund is acknowledged and ignored: the order
            // stays paid.
            event = charge.refunded == true ? PaymentEvent(kind: .refunded, paid: charge.amountRefunded) : nil
        default:
            orderReference = nil
            event = nil
        }
        return WebhookDelivery(
            provider: .stripe,
            eventID: envelope.id,
            eventType: envelope.type,
            orderReference: orderReference,
            event: event,
            rawBody: request.body,
            paymentReference: paymentReference
        )
    }

    public var acknowledgement: WebhookReply { .json(200, #"{"received":true}"#) }

    public func failure(_ rejection: WebhookRejection?) -> WebhookReply { self.jsonFailure(rejection) }

    /// Read first, so that an event type we ignore never fails on a `data.object` we do not model.
    private struct Envelope: Decodable {
        let id: String
        let type: String
    }

    private struct Event<Object: Decodable>: Decodable {
        let data: Payload

        struct Payload: Decodable {
            let object: Object
        }
    }

    private struct Charge: Decodable {
        let metadata: [String: String]?
        let refunded: Bool?
        let refundedAmount: Int64?
        let currency: String?

        /// The cumulative `amount_refunded` in `currency`, when both are present.
        var amountRefunded: Money? {
            guard let refundedAmount, let currency else { return nil }
            return Money(amount: refundedAmount, currency: currency.uppercased())
        }

        enum CodingKeys: String, CodingKey {
            case metadata, refunded, currency
            case refundedAmount = "amount_refunded"
        }
    }
}
