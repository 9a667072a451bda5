import Payments
import Testing

/// The expected action for every (status, event) pair, with a success that pays the right amount.
/// `nil` in the alert column means a plain transition; see the named tests for the alerts' texts.
private let price = Money(amount: 1999, currency: "CNY")

private enum Expected: Equatable {
    case to(OrderStatus)
    case toWithAlert(OrderStatus, OrderStateMachine.Alert.Kind)
    case progress
    case ignore
    case reject(OrderStateMachine.Alert.Kind)
}

private let table: [(OrderStatus, PaymentEvent.Kind, Expected)] = [
    (.pending, .awaitingPayment, .ignore),
    (.pending, .processing, .to(.processing)),
    (.pending, .progress, .progress),
    (.pending, .succeeded, .to(.succeeded)),
    (.pending, .failed, .to(.failed)),
    (.pending, .canceled, .to(.canceled)),
    (.pending, .refunded, .reject(.contradiction)),

    (.processing, .awaitingPayment, .ignore),
    (.processing, .processing, .ignore),
    (.processing, .progress, .progress),
    (.processing, .succeeded, .to(.succeeded)),
    (.processing, .failed, .to(.failed)),
    (.processing, .canceled, .to(.canceled)),
    (.processing, .refunded, .reject(.contradiction)),

    (.succeeded, .awaitingPayment, .ignore),
    (.succeeded, .processing, .ignore),
    (.succeeded, .progress, .ignore),
    (.succeeded, .succeeded, .ignore),
    (.succeeded, .failed, .reject(.contradiction)),
    (.succeeded, .canceled, .reject(.contradiction)),
    (.succeeded, .refunded, .to(.refunded)),

    (.failed, .awaitingPayment, .ignore),
    (.failed, .processing, .ignore),
    (.failed, .progress, .ignore),
    (.failed, .succeeded, .toWithAlert(.succeeded, .paidAfterFinal)),
    (.failed, .failed, .ignore),
    (.failed, .canceled, .ignore),
    (.failed, .refunded, .reject(.contradiction)),

    (.canceled, .awaitingPayment, .ignore),
    (.canceled, .processing, .ignore),
    (.canceled, .progress, .ignore),
    (.canceled, .succeeded, .toWithAlert(.succeeded, .paidAfterFinal)),
    (.canceled, .failed, .ignore),
    (.canceled, .canceled, .ignore),
    (.canceled, .refunded, .reject(.contradiction)),

    (.expired, .awaitingPayment, .ignore),
    (.expired, .processing, .ignore),
    (.expired, .progress, .ignore),
    (.expired, .succeeded, .toWithAlert(.succeeded, .paidAfterFinal)),
    (.expired, .failed, .ignore),
    (.expired, .canceled, .ignore),
    (.expired, .refunded, .reject(.contradiction)),

    (.refunded, .awaitingPayment, .ignore),
    (.refunded, .processing, .ignore),
    (.refunded, .progress, .ignore),
    (.refunded, .succeeded, .ignore),
    (.refunded, .failed, .ignore),
    (.refunded, .canceled, .ignore),
    (.refunded, .refunded, .ignore),
]

private let allKinds: [PaymentEvent.Kind] = [
    .awaitingPayment, .processing, .progress, .succeeded, .failed, .canceled, .refunded,
]

@Suite("OrderStateMachine")
struct OrderStateMachineTests {
    /// The table names every (status, event) pair exactly once.
    @Test func tableIsExhaustive() {
        #expect(table.count == OrderStatus.allCases.count * allKinds.count)
        for status in OrderStatus.allCases {
            for kind in allKinds {
                #expect(table.filter { $0.0 == status && $0.1 == kind }.count == 1, "\(status) × \(kind)")
            }
        }
    }

    /// Every (status, event) pair does what the table says, and the status follows the action.
    @Test(arguments: table.indices)
    func transition(row: Int) {
        let (status, kind, expected) = table[row]
        var machine = OrderStateMachine(status: status, price: price)
        let action = machine.paymentEventReceived(PaymentEvent(kind: kind, paid: price))
        switch (action, expected) {
        case (.transition(let from, let to, nil), .to(let target)):
            #expect(from == status && to == target && machine.status == target)
        case (.transition(let from, let to, let alert?), .toWithAlert(let target, let alertKind)):
            #expect(from == status && to == target && alert.kind == alertKind && machine.status == target)
        case (.progress, .progress), (.ignore, .ignore):
            #expect(machine.status == status)
        case (.reject(let alert), .reject(let alertKind)):
            #expect(alert.kind == alertKind && machine.status == status)
        default:
            Issue.record("\(status) × \(kind): got \(action), expected \(expected)")
        }
    }

    /// A success paying another amount or currency, or none, never marks the order paid.
    @Test(arguments: [
        Money(amount: 1998, currency: "CNY"), Money(amount: 1999, currency: "USD"),
        Money(amount: 19990, currency: "CNY"),
        nil,
    ])
    func mismatchedSuccessIsRejected(paid: Money?) {
        for status in [OrderStatus.pending, .processing, .failed] {
            var machine = OrderStateMachine(status: status, price: price)
            guard case .reject(let alert) = machine.paymentEventReceived(PaymentEvent(kind: .succeeded, paid: paid))
            else {
                Issue.record("\(status): a mismatched success was not rejected")
                continue
            }
            #expect(alert.kind == .amountMismatch)
            #expect(alert.message.contains("1999 CNY"))
            #expect(machine.status == status)
        }
    }

    /// Out of order: succeeded, then a late processing, then succeeded again ends succeeded, moved once.
    @Test func outOfOrderDeliveriesEndSucceeded() {
        var machine = OrderStateMachine(status: .pending, price: price)
        #expect(
            machine.paymentEventReceived(PaymentEvent(kind: .succeeded, paid: price))
                == .transition(from: .pending, to: .succeeded, alert: nil)
        )
        #expect(machine.paymentEventReceived(PaymentEvent(kind: .processing)) == .ignore)
        #expect(machine.paymentEventReceived(PaymentEvent(kind: .succeeded, paid: price)) == .ignore)
        #expect(machine.status == .succeeded)
    }

    /// Only a pending order expires; one with a payment in flight waits for the provider's word.
    @Test func expiry() {
        for status in OrderStatus.allCases {
            var machine = OrderStateMachine(status: status, price: price)
            let action = machine.expiryReached()
            if status == .pending {
                #expect(action == .transition(from: .pending, to: .expired, alert: nil))
            } else {
                #expect(action == .ignore)
                #expect(machine.status == status)
            }
        }
    }

    /// A merchant cancels only a pending order; a repeated cancel is already done; others are refused.
    @Test func merchantCancel() {
        for status in OrderStatus.allCases {
            var machine = OrderStateMachine(status: status, price: price)
            switch status {
            case .pending: #expect(machine.cancelRequested() == .cancel && machine.status == .canceled)
            case .canceled: #expect(machine.cancelRequested() == .alreadyCanceled)
            default: #expect(machine.cancelRequested() == .refuse(current: status))
            }
        }
    }

    /// Final states are the ones that end a stream.
    @Test func finalStates() {
        #expect(OrderStatus.allCases.filter(\.isFinal) == [.succeeded, .failed, .canceled, .expired])
    }
}
