public import Foundation
public import Payments

/// The order as a provider's API knows it: WeChat Pay and Alipay by out_trade_no (our order id),
/// Stripe by the PaymentIntent's id.
public struct TradeReference: Sendable, Hashable {
    /// Our order id: WeChat Pay's and Alipay's `out_trade_no`.
    public var orderID: String
    /// The provider's own id for the payment, when the order has one (Stripe's `pi_…`).
    public var paymentID: String?
    /// The merchant's id for the order, which a payment's metadata may name instead of ours.
    public var merchantOrderID: String?

    public init(orderID: String, paymentID: String?, merchantOrderID: String? = nil) {
        self.orderID = orderID
        self.paymentID = paymentID
        self.merchantOrderID = merchantOrderID
    }
}

/// What a verified query answer says.
public struct TradeQueryResult: Sendable, Hashable {
    /// The provider's canonical answer: `nil` when the provider knows no such payment (WeChat Pay's
    /// `ORDER_NOT_EXIST`, Alipay's `ACQ.TRADE_NOT_EXIST` for a QR code nobody scanned, Stripe's
    /// `resource_missing`), which means nobody has paid.
    public var event: PaymentEvent?
    /// The provider's own word for the state (`SUCCESS`, `WAIT_BUYER_PAY`, `requires_payment_method`,
    /// `ORDER_NOT_EXIST`…), for the audit trail and logs.
    public var providerState: String
    /// The verified answer's body, as received.
    public var rawBody: [UInt8]

    public init(event: PaymentEvent?, providerState: String, rawBody: [UInt8]) {
        self.event = event
        self.providerState = providerState
        self.rawBody = rawBody
    }
}

/// What a close (WeChat Pay close, Alipay close, Stripe cancel) ended in.
public enum CloseResult: Sendable, Hashable {
    /// Closed now, or it was closed already: nobody can pay it any more.
    case closed
    /// The provider knows no such payment; nothing can be paid there (an Alipay QR code nobody
    /// scanned).
    case notFound
    /// The provider refused because of the payment's state (paid meanwhile, or paying): query
    /// again to learn what happened. `code` is the provider's reason.
    case refused(code: String)
}

/// Why a call gave no verified answer. None of these says anything about the payment.
public enum ProviderCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No answer, or a 5xx, after the retries; try again later. `retryAfter` when the provider said.
    case unavailable(String, retryAfter: Duration?)
    /// 429 (or Alipay's rate-limit codes): the provider asks us to slow down.
    case rateLimited(retryAfter: Duration?)
    /// An answer whose signature is missing, does not verify, or is too old: changes nothing, and is
    /// raised as `unverified_provider_response`.
    case unverified(String)
    /// A verified refusal that is not about the payment (bad credentials, bad parameters): an
    /// operator must look.
    case rejected(status: Int, code: String, message: String)
    /// The order lacks what this provider needs to be asked (a Stripe order without a PaymentIntent id).
    case noReference(String)

    public var description: String {
        switch self {
        case .unavailable(let message, _): "unavailable: \(message)"
        case .rateLimited: "rate limited"
        case .unverified(let message): "unverified answer: \(message)"
        case .rejected(let status, let code, let message): "rejected (\(status) \(code)): \(message)"
        case .noReference(let message): "no reference: \(message)"
        }
    }
}

/// One provider's API for reconciliation: ask about a payment, close it. Answers are verified
/// (signature, timestamp) before anything in them is believed; `now` is the injected clock.
public protocol ProviderClient: Sendable {
    var provider: Provider { get }

    /// Asks what the provider knows about the order's payment.
    func query(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> TradeQueryResult

    /// Closes the payment so that it can no longer be paid.
    func close(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> CloseResult
}
