import Foundation
import Payments

/// One payment at one provider, as the emulator keeps it: a value whose inputs say what they did;
/// its owner (``EmulatorState``) holds it under a lock and the API answers are rendered from it.
///
/// ```
/// created ──scan──▶ paying ──pay──▶ paid ──refund──▶ refunded
///    └──────────────pay──────────────▲
/// created, paying ──close──▶ closed
/// ```
///
/// An Alipay trade does not exist at Alipay until the buyer scans the QR code (provider-apis.md
/// §2c): until then query and close answer `ACQ.TRADE_NOT_EXIST`, and a close changes nothing.
struct Trade: Sendable {
    enum State: String, Sendable, Hashable, Encodable {
        case created, paying, paid, refunded, closed
    }

    /// Why a control input was refused; the control API answers 409.
    enum Refusal: Error, Hashable {
        case closed
        case alreadyPaid
        case notPaid
        case notOpen(State)

        var code: String {
            switch self {
            case .closed: "trade_closed"
            case .alreadyPaid: "already_paid"
            case .notPaid: "not_paid"
            case .notOpen: "invalid_state"
            }
        }

        var message: String {
            switch self {
            case .closed: "the trade is closed; it can no longer be paid"
            case .alreadyPaid: "the trade is paid already"
            case .notPaid: "only a paid trade can be refunded"
            case .notOpen(let state): "the trade is \(state.rawValue); only a created or paying trade can be scanned"
            }
        }
    }

    /// What a close (WeChat Pay close, Alipay close, Stripe cancel) met.
    enum CloseOutcome: Hashable {
        /// Open until now; closed.
        case closed
        case alreadyClosed
        /// Paid, or paid and refunded: nothing to close.
        case paid
        /// WeChat Pay only: younger than the minimum age.
        case tooEarly
        /// Alipay only: nobody scanned the QR code, so Alipay knows no such trade.
        case notFound
    }

    let provider: Provider
    let orderID: String
    let price: Money
    let createdAt: Date
    /// The provider's own id, made at creation: WeChat Pay's `transaction_id`, Alipay's `trade_no`,
    /// Stripe's PaymentIntent `pi_…`. Shown only once the provider would have one
    /// (``visiblePaymentID``).
    let paymentID: String
    private(set) var state = State.created
    /// What the provider reports as paid: the price, unless a test asked for another amount.
    private(set) var paid: Money?
    private(set) var paidAt: Date?
    private(set) var closedAt: Date?
    /// Stripe's `cancellation_reason`, when the cancel gave one.
    private(set) var cancellationReason: String?

    init(provider: Provider, orderID: String, price: Money, createdAt: Date, paymentID: String) {
        self.provider = provider
        self.orderID = orderID
        self.price = price
        self.createdAt = createdAt
        self.paymentID = paymentID
    }

    /// Whether the provider knows the trade: always, except an Alipay trade nobody scanned.
    var existsAtProvider: Bool { self.provider != .alipay || self.state != .created }

    /// WeChat Pay assigns `transaction_id` at payment, Alipay `trade_no` at the scan, Stripe the
    /// PaymentIntent at creation.
    var visiblePaymentID: String? {
        switch self.provider {
        case .wechatpay: self.paid == nil ? nil : self.paymentID
        case .alipay: self.existsAtProvider ? self.paymentID : nil
        case .stripe, .sandbox: self.paymentID
        }
    }

    /// What the provider reports as the trade's amount: what was paid once paid (so that every
    /// answer agrees with the callback, which reports the paid amount), else the price.
    var reportedAmount: Money { self.paid ?? self.price }

    /// The buyer opened the payment (Alipay: scanned the QR code, so the trade now exists).
    /// Repeating it changes nothing.
    mutating func scanned() throws(Refusal) {
        switch self.state {
        case .created: self.state = .paying
        case .paying: break
        case .paid, .refunded, .closed: throw .notOpen(self.state)
        }
    }

    /// The buyer paid `amount` at `now`.
    mutating func paymentMade(_ amount: Money, now: Date) throws(Refusal) {
        switch self.state {
        case .created, .paying:
            self.state = .paid
            self.paid = amount
            self.paidAt = now
        case .paid, .refunded: throw .alreadyPaid
        case .closed: throw .closed
        }
    }

    /// The merchant refunded the whole payment.
    mutating func refundMade() throws(Refusal) {
        guard self.state == .paid else { throw .notPaid }
        self.state = .refunded
    }

    /// A close request at `now`. `minimumAge` is WeChat Pay's rule (nil for the others); the
    /// trade's state is looked at first, so a paid trade answers "paid" at any age.
    mutating func closeRequested(now: Date, minimumAge: Duration?, reason: String? = nil) -> CloseOutcome {
        guard self.existsAtProvider else { return .notFound }
        switch self.state {
        case .paid, .refunded: return .paid
        case .closed: return .alreadyClosed
        case .created, .paying:
            if let minimumAge, now.timeIntervalSince(self.createdAt) < minimumAge.seconds { return .tooEarly }
            self.state = .closed
            self.closedAt = now
            self.cancellationReason = reason
            return .closed
        }
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    var seconds: TimeInterval {
        let (seconds, attoseconds) = self.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
