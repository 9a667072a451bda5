/// What a provider said happened to a payment, in one canonical form for every provider.
public struct PaymentEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The payer is still to pay (Alipay's WAIT_BUYER_PAY): nothing to change.
        case awaitingPayment
        /// The payment is under way (user paying, bank confirming).
        case processing
        /// A stage of the payment, for the progress bar.
        case progress
        /// The money was taken; ``PaymentEvent/paid`` says how much.
        case succeeded
        /// The attempt failed.
        case failed
        /// The payment was closed or revoked before it succeeded.
        case canceled
        /// Money was given back after success.
        case refunded
    }

    public var kind: Kind
    /// The amount the provider reports as paid (for ``Kind/succeeded``) or refunded.
    public var paid: Money?
    /// 0–100, when the provider reports one.
    public var percent: Int?
    /// A short label for the current stage ("scanning", "bank_confirming"), when reported.
    public var stage: String?
    /// A human-readable explanation (a failure reason), when reported.
    public var message: String?

    public init(kind: Kind, paid: Money? = nil, percent: Int? = nil, stage: String? = nil, message: String? = nil) {
        self.kind = kind
        self.paid = paid
        self.percent = percent
        self.stage = stage
        self.message = message
    }
}
