public import Foundation
public import Payments

/// An order as stored.
public struct Order: Sendable, Hashable {
    public let id: String
    public let merchantOrderID: String?
    public let price: Money
    public let provider: Provider
    public let status: OrderStatus
    public let description: String?
    /// The merchant's metadata, as JSON object text.
    public let metadata: String
    public let expiresAt: Date
    public let createdAt: Date
    public let updatedAt: Date
    /// The provider's own id for the payment (Stripe's PaymentIntent id), when known.
    public let providerReference: String?
}

/// What a merchant asks for when creating an order (already validated by the API layer).
public struct NewOrder: Sendable, Hashable {
    public var merchantOrderID: String?
    public var price: Money
    public var provider: Provider
    public var description: String?
    /// JSON object text.
    public var metadata: String
    public var expiresIn: Int
    /// The provider's own id for the payment (Stripe's PaymentIntent id), when the merchant has it.
    public var providerReference: String?
    /// When the order is first asked about at its provider, after creation; `nil` when its
    /// provider cannot be asked (no API credentials), so it is never reconciled.
    public var firstQueryAfter: Duration?

    public init(
        merchantOrderID: String?,
        price: Money,
        provider: Provider,
        description: String?,
        metadata: String,
        expiresIn: Int,
        providerReference: String? = nil,
        firstQueryAfter: Duration? = nil
    ) {
        self.merchantOrderID = merchantOrderID
        self.price = price
        self.provider = provider
        self.description = description
        self.metadata = metadata
        self.expiresIn = expiresIn
        self.providerReference = providerReference
        self.firstQueryAfter = firstQueryAfter
    }
}

/// Why the store refused a request; the API maps each to its HTTP answer.
public enum OrderStoreError: Error, Sendable, Hashable {
    case orderNotFound
    /// The Idempotency-Key was used before with a different request.
    case idempotencyKeyReused
    /// The merchant_order_id belongs to an order created by a different request.
    case merchantOrderIDReused
    /// The order has reached a final status and takes no more events.
    case orderFinished(OrderStatus)
    /// Only a pending order can be canceled.
    case notCancelable(OrderStatus)
}
