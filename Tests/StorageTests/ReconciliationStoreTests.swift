import EventLog
import Foundation
import Payments
import Postgres
import Storage
import Synchronization
import TestSupport
import Testing

/// An order of `provider` that the reconciler asks about a minute after creation.
private func reconciledOrder(_ provider: Provider = .wechatpay, expiresIn: Int = 900) -> NewOrder {
    NewOrder(
        merchantOrderID: nil,
        price: price,
        provider: provider,
        description: nil,
        metadata: "{}",
        expiresIn: expiresIn,
        firstQueryAfter: .seconds(60)
    )
}

/// Creates the order (no idempotency key).
private func make(_ store: OrderStore, _ new: NewOrder) async throws -> Order {
    created(try await store.create(new, idempotencyKey: nil, requestHash: String(repeating: "0", count: 64)))
}

/// Moves an order's clock back by `seconds`, as if it had been created that long ago.
private func age(_ database: TestDatabase, _ orderID: String, by seconds: Int) async throws {
    try await database.withConnection { connection in
        try connection.execute(
            """
            UPDATE orders SET created_at = created_at - make_interval(secs => $2),
                expires_at = expires_at - make_interval(secs => $2),
                reconcile_at = reconcile_at - make_interval(secs => $2),
                updated_at = updated_at - make_interval(secs => $2)
            WHERE id = $1
            """,
            [orderID, Double(seconds)]
        )
    }
}

private func queryAnswer(_ order: String, _ kind: PaymentEvent.Kind, provider: Provider = .wechatpay)
    -> WebhookDelivery
{
    WebhookDelivery(
        provider: provider,
        eventID: "query:" + UUID().uuidString,
        eventType: "query.\(kind)",
        orderReference: order,
        event: PaymentEvent(kind: kind, paid: kind == .succeeded ? price : nil),
        rawBody: Array("{}".utf8),
        source: .query
    )
}

@Suite("OrderStore: reconciliation, against a real PostgreSQL")
struct ReconciliationStoreTests {
    /// An order is due a minute after creation; a claim holds it for its lease, so a second claim
    /// gets nothing; an order of a provider not asked, or one already final, is never claimed.
    @Test func aDueOrderIsClaimedOnce() async throws {
        try await withStore { store, database in
            let order = try await make(store, reconciledOrder())
            let sandbox = try await make(store, newOrder())
            #expect(
                try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60)).isEmpty
            )
            try await age(database, order.id, by: 61)
            try await age(database, sandbox.id, by: 61)
            let claims = try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60))
            #expect(claims.map(\.order.id) == [order.id])
            #expect(claims.first?.closing == nil)
            #expect(claims.first?.queriesMade == 0)
            #expect(
                try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60)).isEmpty
            )
        }
    }

    /// An order whose row a callback holds locked is skipped, and claimed once the callback committed.
    @Test func anOrderBeingUpdatedIsSkipped() async throws {
        try await withStore { store, database in
            let order = try await make(store, reconciledOrder())
            try await age(database, order.id, by: 61)
            let locked = try Connection.connect(database.configuration)
            defer { locked.close() }
            try locked.execute("BEGIN")
            try locked.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", [order.id])
            #expect(
                try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60)).isEmpty
            )
            try locked.execute("COMMIT")
            #expect(
                try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60)).count == 1
            )
        }
    }

    /// A pending order past its deadline starts closing (`expired`) when claimed; the sweeper
    /// leaves the orders of reconciled providers to the reconciler.
    @Test func theDeadlineStartsClosing() async throws {
        try await withStore { store, database in
            let order = try await make(store, reconciledOrder(expiresIn: 60))
            try await age(database, order.id, by: 61)
            #expect(try await store.expireDueOrders(limit: 10, reconciled: [.wechatpay]) == 0)
            let claims = try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60))
            #expect(claims.first?.closing?.reason == .expired)
            #expect(try await store.finishClosing(orderID: order.id, reason: .expired, alert: nil) == .expired)
            #expect(try await store.order(id: order.id)?.status == .expired)
        }
    }

    /// A payment found by a query is applied once, raises callback_missing and is recorded as a
    /// query; the callback that comes after is a harmless repeat; a query that found nothing new
    /// writes nothing.
    @Test func aQueryIsAppliedLikeACallback() async throws {
        let raised = Mutex<[Alert]>([])
        let onAlert: @Sendable (Alert) -> Void = { alert in raised.withLock { $0.append(alert) } }
        try await withStore(onAlert: onAlert) { store, database in
            let order = try await make(store, reconciledOrder())
            #expect(try await store.record(queryAnswer(order.id, .awaitingPayment)) == .noChange)
            #expect(try await count(database, "SELECT count(*) FROM webhook_inbox") == 0)
            #expect(try await store.record(queryAnswer(order.id, .succeeded)) == .applied)
            var callback = delivery("evt_late", order: order.id, .succeeded)
            callback = WebhookDelivery(
                provider: .wechatpay,
                eventID: callback.eventID,
                eventType: callback.eventType,
                orderReference: callback.orderReference,
                event: callback.event,
                rawBody: callback.rawBody
            )
            #expect(try await store.record(callback) == .noChange)
            #expect(try await store.order(id: order.id)?.status == .succeeded)
            #expect(
                try await count(
                    database,
                    "SELECT count(*) FROM order_events WHERE order_id = $1 AND event = 'finish'",
                    [order.id]
                )
                    == 1
            )
            #expect(try await count(database, "SELECT count(*) FROM webhook_inbox WHERE source = 'query'") == 1)
            #expect(raised.withLock { $0.map { $0.data.contains(#""kind": "callback_missing""#) } } == [true])
        }
    }

    /// An order made while its provider could not be asked (no `reconcile_at`) still expires by the
    /// sweeper once the provider is reconciled: the reconciler would never look at it.
    @Test func anOrderTheReconcilerNeverLooksAtStillExpires() async throws {
        try await withStore { store, database in
            var unreconciled = reconciledOrder(expiresIn: 60)
            unreconciled.firstQueryAfter = nil
            let order = try await make(store, unreconciled)
            try await age(database, order.id, by: 61)
            #expect(try await store.expireDueOrders(limit: 10, reconciled: [.wechatpay]) == 1)
            #expect(try await store.order(id: order.id)?.status == .expired)
        }
    }

    /// A merchant's cancel starts closing; finishing cancels a pending order only, and giving up
    /// raises close_failed; an order paid meanwhile stays paid.
    @Test func closingEndsOnlyAPendingOrder() async throws {
        try await withStore { store, database in
            let unpaid = try await make(store, reconciledOrder())
            #expect(try await store.startClosing(orderID: unpaid.id, reason: .canceled).status == .pending)
            let claims = try await store.claimReconciliations(providers: [.wechatpay], limit: 10, lease: .seconds(60))
            #expect(claims.map(\.closing?.reason) == [.canceled])
            #expect(try await store.finishClosing(orderID: unpaid.id, reason: .canceled, alert: "gave up") == .canceled)
            #expect(try await count(database, "SELECT count(*) FROM alerts WHERE kind = 'close_failed'") == 1)

            let paid = try await make(store, reconciledOrder())
            _ = try await store.startClosing(orderID: paid.id, reason: .canceled)
            #expect(try await store.record(queryAnswer(paid.id, .succeeded)) == .applied)
            #expect(try await store.finishClosing(orderID: paid.id, reason: .canceled, alert: nil) == .succeeded)
            #expect(try await store.order(id: paid.id)?.status == .succeeded)
        }
    }

    /// A Stripe order learns its PaymentIntent id from the first webhook naming it, and keeps it.
    @Test func anOrderLearnsItsPaymentReference() async throws {
        try await withStore { store, _ in
            let order = try await make(store, reconciledOrder(.stripe))
            for (id, reference) in [("evt_1", "pi_first"), ("evt_2", "pi_second")] {
                let processing = WebhookDelivery(
                    provider: .stripe,
                    eventID: id,
                    eventType: "payment_intent.processing",
                    orderReference: order.id,
                    event: PaymentEvent(kind: .processing),
                    rawBody: Array("{}".utf8),
                    paymentReference: reference
                )
                _ = try await store.record(processing)
            }
            #expect(try await store.order(id: order.id)?.providerReference == "pi_first")
        }
    }
}
