/// Decides what a payment event, an expiry or a merchant's cancel does to an order. Pure: the
/// store locks the order row, asks the machine, and writes what the returned action says.
///
/// Providers deliver late, twice and out of order, so the rules are about never losing a payment
/// and never moving an order backwards:
/// - A repeated or late event (`processing` after `succeeded`, a second `succeeded`) changes nothing.
/// - `failed` or `canceled` after `succeeded` never flips a paid order: it is a contradiction,
///   recorded as an alert.
/// - A success whose amount or currency differs from the order's (or that reports none) never
///   makes it `succeeded`: the order stays as it was and a mismatch alert is recorded.
/// - A matching success after `failed`, `canceled` or `expired` is money actually taken: the order
///   becomes `succeeded` (so nothing is lost) and an alert asks a person to fulfil or refund it.
public struct OrderStateMachine: Sendable, Hashable {
    /// What the caller must do.
    public enum Action: Sendable, Hashable {
        /// Change the status (append a `status` event, and `finish` when the new status is final),
        /// raising `alert` as well when it is set.
        case transition(from: OrderStatus, to: OrderStatus, alert: Alert?)
        /// Append a `progress` event; the status stays.
        case progress
        /// Nothing to write: the event is a duplicate, late, or carries no news.
        case ignore
        /// The event is refused: leave the order as it is and record the alert.
        case reject(Alert)

        /// The alert to record, if the action carries one.
        public var alert: Alert? {
            switch self {
            case .transition(_, _, let alert): alert
            case .reject(let alert): alert
            case .progress, .ignore: nil
            }
        }
    }

    /// Something a person should look at; the ops stream shows these.
    public struct Alert: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable {
            /// The event contradicts the order's state (`failed` after `succeeded`, a refund of an unpaid order).
            case contradiction
            /// The paid amount or currency differs from the order's.
            case amountMismatch = "amount_mismatch"
            /// Money was taken for an order that had already failed, been canceled or expired.
            case paidAfterFinal = "paid_after_final"
            /// A provider reported on an order that belongs to another provider.
            case providerMismatch = "provider_mismatch"
        }

        public let kind: Kind
        public let message: String

        public init(kind: Kind, message: String) {
            self.kind = kind
            self.message = message
        }
    }

    public private(set) var status: OrderStatus
    /// What the order costs: what a success must report.
    public let price: Money

    public init(status: OrderStatus, price: Money) {
        self.status = status
        self.price = price
    }

    /// A verified provider event arrived for this order.
    public mutating func paymentEventReceived(_ event: PaymentEvent) -> Action {
        switch (self.status, event.kind) {
        case (_, .awaitingPayment):
            return .ignore

        case (.pending, .processing):
            return self.move(to: .processing)
        case (_, .processing):
            return .ignore

        case (.pending, .progress), (.processing, .progress):
            return .progress
        case (_, .progress):
            return .ignore

        case (.succeeded, .succeeded), (.refunded, .succeeded):
            return .ignore
        case (let status, .succeeded):
            // A success that does not say what was paid is treated like a wrong amount: an order is
            // never marked paid on a provider's word alone.
            guard let paid = event.paid, paid == self.price else {
                let reported = event.paid.map { "paid \($0)" } ?? "no paid amount reported"
                return .reject(
                    Alert(
                        kind: .amountMismatch,
                        message: "\(reported) but the order is \(self.price); order left \(status.rawValue)"
                    )
                )
            }
            guard status == .pending || status == .processing else {
                return self.move(
                    to: .succeeded,
                    alert: Alert(
                        kind: .paidAfterFinal,
                        message: "payment succeeded after the order was \(status.rawValue); fulfil or refund it"
                    )
                )
            }
            return self.move(to: .succeeded)

        case (.pending, .failed), (.processing, .failed):
            return self.move(to: .failed)
        case (.pending, .canceled), (.processing, .canceled):
            return self.move(to: .canceled)
        case (.succeeded, .failed), (.succeeded, .canceled):
            return .reject(
                Alert(
                    kind: .contradiction,
                    message: "\(event.kind) reported for a succeeded order; order left succeeded"
                )
            )
        case (_, .failed), (_, .canceled):
            // Already final (or refunded, where a provider closes the trade after the refund).
            return .ignore

        case (.succeeded, .refunded):
            return self.move(to: .refunded)
        case (.refunded, .refunded):
            return .ignore
        case (let status, .refunded):
            return .reject(
                Alert(
                    kind: .contradiction,
                    message: "refund reported for an order that was never paid (\(status.rawValue))"
                )
            )
        }
    }

    /// The order's payment deadline passed. Only an order nobody has started paying expires: one in
    /// `processing` has a payment in flight, whose outcome the provider will still report.
    public mutating func expiryReached() -> Action {
        self.status == .pending ? self.move(to: .expired) : .ignore
    }

    /// The merchant cancels the order. Only a pending order can be canceled; a repeated cancel is
    /// answered as done. Anything else is refused with the reason.
    public mutating func cancelRequested() -> CancelAction {
        switch self.status {
        case .pending:
            self.status = .canceled
            return .cancel
        case .canceled:
            return .alreadyCanceled
        default:
            return .refuse(current: self.status)
        }
    }

    /// The answer to a merchant's cancel.
    public enum CancelAction: Sendable, Hashable {
        case cancel
        case alreadyCanceled
        case refuse(current: OrderStatus)
    }

    private mutating func move(to status: OrderStatus, alert: Alert? = nil) -> Action {
        let previous = self.status
        self.status = status
        return .transition(from: previous, to: status, alert: alert)
    }
}
