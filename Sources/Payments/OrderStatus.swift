/// Where an order is in its life.
///
/// ```
/// pending ──► processing ──► succeeded ──► refunded
///    │            │      └──► failed | canceled
///    └────────────┴─────────► failed | canceled | expired
/// ```
public enum OrderStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case pending
    case processing
    case succeeded
    case failed
    case canceled
    case expired
    case refunded

    /// The states that end an order's stream with `finish`. `refunded` follows `succeeded`, whose
    /// `finish` has already been sent.
    public var isFinal: Bool {
        switch self {
        case .succeeded, .failed, .canceled, .expired: true
        case .pending, .processing, .refunded: false
        }
    }
}

/// The payment providers the service takes webhooks from.
public enum Provider: String, Sendable, Hashable, CaseIterable, Codable {
    case sandbox
    case stripe
    case wechatpay
    case alipay
}

/// An amount in minor units (cents, fen) of an ISO 4217 currency.
public struct Money: Sendable, Hashable, CustomStringConvertible {
    public let amount: Int64
    /// Three capital letters.
    public let currency: String

    public init(amount: Int64, currency: String) {
        self.amount = amount
        self.currency = currency
    }

    public var description: String { "\(self.amount) \(self.currency)" }
}
