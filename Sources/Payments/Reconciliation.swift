public import Foundation

/// Why an order is being closed at its provider, and the status it ends in once closed.
public enum CloseReason: String, Sendable, Hashable, CaseIterable {
    /// The payment deadline passed.
    case expired
    /// The merchant canceled the order.
    case canceled

    public var status: OrderStatus {
        switch self {
        case .expired: .expired
        case .canceled: .canceled
        }
    }
}

/// The rules a reconciler follows, pure: when an open order is asked about, what each answer
/// leads to, and when closing at the provider gives up. The order's place in them is stored on its
/// row (queries made, closing since), so any instance can take the next step.
///
/// Providers tell merchants to ask when a callback does not come (WeChat Pay: 商户后台未收到异步
/// 支付结果通知时，商户应该主动调用查单接口; Alipay `alipay.trade.query`; Stripe: retrieve the
/// PaymentIntent), and to close a payment they gave up on, or it may still be paid after.
public struct ReconciliationRules: Sendable, Hashable {
    /// When the first queries happen, counted from the order's creation.
    public var after: [Duration]
    /// After those, the time between queries.
    public var every: Duration
    /// How long closing at the provider is tried before the order is expired or canceled anyway
    /// (with a `close_failed` alert).
    public var closeGiveUp: Duration

    /// Around 1, 2, 5, 10, 20 and 30 minutes after creation, then every 30 minutes; give up
    /// closing after 30 minutes. WeChat Pay's guide asks to query when no callback came within a
    /// minute or so; most payments end within minutes, and the last steps only catch the slow.
    public static let standard = ReconciliationRules(
        after: [.seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1_200), .seconds(1_800)],
        every: .seconds(1_800),
        closeGiveUp: .seconds(1_800)
    )

    public init(after: [Duration], every: Duration, closeGiveUp: Duration) {
        precondition(!after.isEmpty && every > .zero, "a schedule needs a first step and a period")
        self.after = after
        self.every = every
        self.closeGiveUp = closeGiveUp
    }

    /// When the order is next asked about, once `queriesMade` queries have been made, and the
    /// count that step has: the next step on the schedule that is still to come at `now` (steps
    /// missed while no reconciler ran are skipped, not made in a burst), but never later than the
    /// deadline while the order is pending, since the deadline starts closing, which asks first
    /// (the query "right before it expires").
    public func nextQuery(createdAt: Date, expiresAt: Date, status: OrderStatus, queriesMade: Int, now: Date)
        -> (at: Date, queriesMade: Int)
    {
        var step = queriesMade
        var next = createdAt.addingTimeInterval(self.offset(ofStep: step).timeInterval)
        while next <= now {
            step += 1
            next = createdAt.addingTimeInterval(self.offset(ofStep: step).timeInterval)
        }
        return (status == .pending ? min(next, expiresAt) : next, step)
    }

    /// How long after creation the query with this index (from 0) comes.
    private func offset(ofStep step: Int) -> Duration {
        step < self.after.count
            ? self.after[step] : self.after[self.after.count - 1] + self.every * (step - self.after.count + 1)
    }

    /// What to do with a verified answer to a query.
    public enum AfterQuery: Sendable, Hashable {
        /// Apply the provider's answer to the order as a callback would be (the state machine
        /// decides), then go on with the schedule while the order stays open.
        case record(PaymentEvent)
        /// Nothing new: ask again at the next step.
        case schedule
        /// Close the payment at the provider.
        case close
        /// The provider has already closed the payment: the order ends for `closing`'s reason.
        case finish
    }

    /// What a query's answer leads to. `answer` is `nil` when the provider knows no such payment.
    /// - Parameter closing: why the order is being closed, or `nil` for a scheduled query.
    public func afterQuery(_ answer: PaymentEvent?, closing: CloseReason?) -> AfterQuery {
        // Unknown to the provider: nobody has paid. Close it if the order is closing.
        guard let answer else { return closing == nil ? .schedule : .close }
        switch (answer.kind, closing) {
        case (.awaitingPayment, nil), (.progress, nil):
            return .schedule
        case (.awaitingPayment, _?), (.progress, _?), (.failed, _?):
            // Unpaid (or a failed attempt the payer may retry): close it, so nobody can pay it now.
            return .close
        case (.canceled, _?):
            // Closed there already (timed out at the provider, or by an earlier close of ours).
            return .finish
        case (.processing, _), (.succeeded, _), (.failed, nil), (.canceled, nil), (.refunded, _):
            // A payment under way is not closed: it ends as the provider reports, and the order,
            // now `processing`, no longer expires or cancels.
            return .record(answer)
        }
    }

    /// When closing is tried again after a step that got no verified answer, or `nil` to give up
    /// (expire or cancel anyway, alerting `close_failed`): waits grow with the time spent closing,
    /// half of it, from 5 seconds to 5 minutes, so a provider that is down is not asked in a loop;
    /// a `Retry-After` is honoured when longer.
    public func retryClosing(since: Date, now: Date, retryAfter: Duration?) -> Date? {
        let elapsed = now.timeIntervalSince(since)
        guard elapsed < self.closeGiveUp.timeInterval else { return nil }
        let wait = max(min(max(elapsed / 2, 5), 300), retryAfter?.timeInterval ?? 0)
        return now.addingTimeInterval(wait)
    }
}

extension Duration {
    /// Seconds, with the fraction.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = self.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
