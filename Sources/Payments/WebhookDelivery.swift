/// A provider's delivery after its signature was verified: what the adapter hands to the store. A
/// verified answer to a reconciler's query is one too, of its own ``Source``.
public struct WebhookDelivery: Sendable, Hashable {
    /// How the news came.
    public enum Source: String, Sendable, Hashable {
        /// The provider called our webhook.
        case callback
        /// We asked the provider (reconciliation): the answer is applied exactly as a callback
        /// would be, and a final status found this way raises `callback_missing`.
        case query
    }

    public let provider: Provider
    /// The provider's id for this delivery: the idempotency key (unique per provider).
    public let eventID: String
    /// The provider's own name for what happened (`payment_intent.succeeded`, `TRANSACTION.SUCCESS`…).
    public let eventType: String
    /// The order as the provider names it: our id, or the merchant's order id.
    public let orderReference: String?
    /// The canonical event, or `nil` for a delivery the service acknowledges and otherwise ignores.
    public let event: PaymentEvent?
    /// The bytes exactly as received, kept for the audit trail.
    public let rawBody: [UInt8]
    public let source: Source
    /// The provider's own id for the payment, when it asks by that rather than by our order id
    /// (Stripe's PaymentIntent id): the order learns it from its first delivery.
    public let paymentReference: String?

    public init(
        provider: Provider,
        eventID: String,
        eventType: String,
        orderReference: String?,
        event: PaymentEvent?,
        rawBody: [UInt8],
        source: Source = .callback,
        paymentReference: String? = nil
    ) {
        self.provider = provider
        self.eventID = eventID
        self.eventType = eventType
        self.orderReference = orderReference
        self.event = event
        self.rawBody = rawBody
        self.source = source
        self.paymentReference = paymentReference
    }
}
