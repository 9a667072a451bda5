import Foundation
import Payments
import Testing

@Suite("ReconciliationRules")
struct ReconciliationRulesTests {
    private let rules = ReconciliationRules.standard
    private let created = Date(timeIntervalSince1970: 1_800_000_000)

    private func minutes(_ value: Double) -> Date { self.created.addingTimeInterval(value * 60) }

    /// The default schedule asks 1, 2, 5, 10, 20 and 30 minutes after creation, then every 30 minutes.
    @Test func theScheduleSteps() {
        let expires = self.minutes(24 * 60)
        var made = 0
        var times: [Double] = []
        for _ in 0..<9 {
            let next = self.rules.nextQuery(
                createdAt: self.created,
                expiresAt: expires,
                status: .pending,
                queriesMade: made,
                now: self.created
            )
            times.append(next.at.timeIntervalSince(self.created) / 60)
            made = next.queriesMade + 1
        }
        #expect(times == [1, 2, 5, 10, 20, 30, 60, 90, 120])
    }

    /// A pending order is never next asked later than its deadline, where closing asks first; an
    /// order in processing keeps its schedule past the deadline.
    @Test func theDeadlineCapsAPendingOrder() {
        let expires = self.minutes(15)
        let pending = self.rules.nextQuery(
            createdAt: self.created,
            expiresAt: expires,
            status: .pending,
            queriesMade: 4,
            now: self.minutes(10)
        )
        #expect(pending.at == expires)
        let processing = self.rules.nextQuery(
            createdAt: self.created,
            expiresAt: expires,
            status: .processing,
            queriesMade: 4,
            now: self.minutes(10)
        )
        #expect(processing.at == self.minutes(20))
    }

    /// Steps missed while no reconciler ran are skipped, not made in a burst.
    @Test func missedStepsAreSkipped() {
        let next = self.rules.nextQuery(
            createdAt: self.created,
            expiresAt: self.minutes(600),
            status: .pending,
            queriesMade: 1,
            now: self.minutes(45)
        )
        #expect(next.at == self.minutes(60))
        #expect(next.queriesMade == 6)
    }

    /// What each answer leads to, for a scheduled query and while closing.
    @Test func whatAnAnswerLeadsTo() {
        let paid = PaymentEvent(kind: .succeeded, paid: Money(amount: 1, currency: "CNY"))
        let table: [(PaymentEvent?, CloseReason?, ReconciliationRules.AfterQuery)] = [
            (nil, nil, .schedule),
            (PaymentEvent(kind: .awaitingPayment), nil, .schedule),
            (PaymentEvent(kind: .processing), nil, .record(PaymentEvent(kind: .processing))),
            (paid, nil, .record(paid)),
            (PaymentEvent(kind: .failed), nil, .record(PaymentEvent(kind: .failed))),
            (PaymentEvent(kind: .canceled), nil, .record(PaymentEvent(kind: .canceled))),
            (nil, .expired, .close),
            (PaymentEvent(kind: .awaitingPayment), .expired, .close),
            (PaymentEvent(kind: .failed), .canceled, .close),
            (PaymentEvent(kind: .canceled), .expired, .finish),
            (PaymentEvent(kind: .processing), .expired, .record(PaymentEvent(kind: .processing))),
            (paid, .canceled, .record(paid)),
        ]
        for (answer, closing, expected) in table {
            #expect(
                self.rules.afterQuery(answer, closing: closing) == expected,
                "\(String(describing: answer)) \(String(describing: closing))"
            )
        }
    }

    /// Closing is retried with waits that grow with the time spent (5 s to 5 min, or a longer
    /// Retry-After) and gives up after closeGiveUp.
    @Test func closingRetriesThenGivesUp() {
        let since = self.created
        #expect(self.rules.retryClosing(since: since, now: since, retryAfter: nil) == since.addingTimeInterval(5))
        #expect(
            self.rules.retryClosing(since: since, now: self.minutes(4), retryAfter: nil)
                == self.minutes(4)
                .addingTimeInterval(120)
        )
        #expect(
            self.rules.retryClosing(since: since, now: self.minutes(20), retryAfter: nil) == self.minutes(25)
        )
        #expect(
            self.rules.retryClosing(since: since, now: since, retryAfter: .seconds(60)) == since.addingTimeInterval(60)
        )
        #expect(self.rules.retryClosing(since: since, now: self.minutes(30), retryAfter: nil) == nil)
    }
}
