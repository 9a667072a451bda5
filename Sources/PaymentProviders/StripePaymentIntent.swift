package import Payments

/// A Stripe PaymentIntent, as an event's `data.object` and as `GET /v1/payment_intents/{id}`
/// answers it.
package struct StripePaymentIntent: Decodable, Sendable {
    package let id: String?
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    package let status: String?
    package let metadata: [String: String]?
    package let amount: Int64?
    package let currency: String?
    package let lastPaymentError: PaymentError?

    /// `amount_received` in `currency`, or nil when either is missing (the order is then not
    /// marked paid: the state machine raises a mismatch).
    package var amountReceived: Money? {
        guard let amount, let currency else { return nil }
        return Money(amount: amount, currency: currency.uppercased())
    }

    package struct PaymentError: Decodable, Sendable {
        package let message: String?
    }

    enum CodingKeys: String, CodingKey {
        case id, status, metadata, currency
        case amount = "amount_received"
        case lastPaymentError = "last_payment_error"
    }
}

extension StripePaymentIntent {
    /// What the intent's status says about the order when it is read (not as an event): only
    /// `succeeded` and `canceled` are final; `processing` is a payment under way; every
    /// `requires_*` status waits for the customer (a failed card returns the intent to
    /// `requires_payment_method`, and the customer may try again).
    package var statusEvent: PaymentEvent? {
        switch self.status {
        case "succeeded": PaymentEvent(kind: .succeeded, paid: self.amountReceived)
        case "canceled": PaymentEvent(kind: .canceled)
        case "processing": PaymentEvent(kind: .processing)
        case "requires_payment_method", "requires_confirmation", "requires_action", "requires_capture":
            PaymentEvent(kind: .awaitingPayment)
        default: nil
        }
    }
}
