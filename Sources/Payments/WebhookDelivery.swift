/// A provider's delivery after its signature was verified: what the adapter hands to the store.
public struct WebhookDelivery: Sendable, Hashable {
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

    public init(
        provider: Provider,
        eventID: String,
        eventType: String,
        orderReference: String?,
        event: PaymentEvent?,
        rawBody: [UInt8]
    ) {
        self.provider = provider
        self.eventID = eventID
        self.eventType = eventType
        self.orderReference = orderReference
        self.event = event
        self.rawBody = rawBody
    }
}
