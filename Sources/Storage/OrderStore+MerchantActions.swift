import EventLog
public import Payments
import Postgres

extension OrderStore {
    /// Appends a merchant's event (`progress` or its own name) to an order that is not final yet,
    /// or returns the event an identical earlier request with the same Idempotency-Key appended
    /// (whatever the order's state now).
    ///
    /// - Parameters:
    ///   - data: JSON object text; for `progress` the caller has built the standard shape.
    ///   - idempotency: the request's Idempotency-Key and the hash of the request it came with.
    /// - Returns: the event's id, and whether an earlier request appended it.
    /// - Throws: ``OrderStoreError/orderNotFound``, ``OrderStoreError/orderFinished(_:)``,
    ///   ``OrderStoreError/idempotencyKeyReused`` when the key came with another request (or
    ///   created an order).
    public func appendMerchantEvent(
        orderID: String,
        name: String,
        data: String,
        idempotency: (key: String, requestHash: String)? = nil
    ) async throws -> (eventID: Int64, replayed: Bool) {
        try await self.appending { connection in
            if let idempotency,
                let earlier = try Self.earlierRequest(
                    idempotencyKey: idempotency.key,
                    requestHash: idempotency.requestHash,
                    on: connection
                )
            {
                // A key that created an order is not this request's, whatever its hash.
                guard let eventID = earlier.eventID else { throw OrderStoreError.idempotencyKeyReused }
                return ((eventID, true), [])
            }
            guard let order = try Self.order(id: orderID, on: connection, lock: true) else {
                throw OrderStoreError.orderNotFound
            }
            // After `finish` the stream has ended: an event now would never be seen live.
            guard !order.status.isFinal && order.status != .refunded else {
                throw OrderStoreError.orderFinished(order.status)
            }
            let appended = try connection.run(Self.event(orderID: orderID, name: name, data: data))
            if let idempotency {
                try Self.rememberKey(
                    idempotency.key,
                    requestHash: idempotency.requestHash,
                    orderID: orderID,
                    eventID: appended.event.id,
                    on: connection
                )
            }
            return ((appended.event.id, false), [appended])
        }
    }

    /// Cancels a pending order for the merchant; a repeated cancel answers with the canceled order.
    ///
    /// - Throws: ``OrderStoreError/orderNotFound``, ``OrderStoreError/notCancelable(_:)``.
    public func cancel(orderID: String) async throws -> Order {
        try await self.appending { connection -> (Order, [AppendedEvent]) in
            guard let order = try Self.order(id: orderID, on: connection, lock: true) else {
                throw OrderStoreError.orderNotFound
            }
            var machine = OrderStateMachine(status: order.status, price: order.price)
            switch machine.cancelRequested() {
            case .cancel:
                let appended = try connection.run(
                    Self.statusChange(orderID: orderID, from: order.status, to: .canceled)
                )
                return (try Self.order(id: orderID, on: connection)!, appended)
            case .alreadyCanceled:
                return (order, [])
            case .refuse(let current):
                throw OrderStoreError.notCancelable(current)
            }
        }
    }

    /// Expires up to `limit` pending orders whose deadline passed, oldest first, and returns how many.
    /// Orders of the `reconciled` providers are left to the reconciler, which closes the payment
    /// at the provider first, unless the reconciler will never look at them: made while their
    /// provider had no API credentials, they have no `reconcile_at`.
    ///
    /// Safe with many instances sweeping at once: `FOR UPDATE SKIP LOCKED` gives each order to one
    /// sweeper, and the state machine re-checks the status under the lock.
    public func expireDueOrders(limit: Int, reconciled: [Provider] = []) async throws -> Int {
        try await self.appending { connection -> (Int, [AppendedEvent]) in
            let due = try connection.query(
                """
                SELECT \(Self.orderColumns) FROM orders
                WHERE status = 'pending' AND expires_at <= now()
                    AND (provider <> ALL($2::text[]) OR reconcile_at IS NULL)
                ORDER BY expires_at LIMIT $1
                FOR UPDATE SKIP LOCKED
                """,
                [limit, Self.textArray(reconciled.map(\.rawValue))]
            ).map(Self.order(from:))
            // Every expiry goes in one batch: one round trip for the sweep, however many are due.
            var expiries = Batch<[AppendedEvent]>.constant([])
            for order in due {
                var machine = OrderStateMachine(status: order.status, price: order.price)
                guard case .transition(let from, let to, _) = machine.expiryReached() else { continue }
                expiries = expiries.and(Self.statusChange(orderID: order.id, from: from, to: to)).map { $0 + $1 }
            }
            return (due.count, try connection.run(expiries))
        }
    }
}
