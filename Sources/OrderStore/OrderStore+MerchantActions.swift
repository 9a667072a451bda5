import Payments
import Postgres

extension OrderStore {
    /// Appends a merchant's event (`progress` or its own name) to an order that is not final yet.
    ///
    /// - Parameter data: JSON object text; for `progress` the caller has built the standard shape.
    /// - Returns: the new event's id.
    /// - Throws: ``OrderStoreError/orderNotFound``, ``OrderStoreError/orderFinished(_:)``.
    public func appendMerchantEvent(orderID: String, name: String, data: String) async throws -> Int64 {
        try await self.appending { connection in
            guard let order = try Self.order(id: orderID, on: connection, lock: true) else {
                throw OrderStoreError.orderNotFound
            }
            // After `finish` the stream has ended: an event now would never be seen live.
            guard !order.status.isFinal && order.status != .refunded else {
                throw OrderStoreError.orderFinished(order.status)
            }
            let appended = try Self.appendEvent(orderID: orderID, name: name, data: data, on: connection)
            return (appended.event.id, [appended])
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
                let appended = try Self.changeStatus(
                    orderID: orderID,
                    from: order.status,
                    to: .canceled,
                    on: connection
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
    ///
    /// Safe with many instances sweeping at once: `FOR UPDATE SKIP LOCKED` gives each order to one
    /// sweeper, and the state machine re-checks the status under the lock.
    public func expireDueOrders(limit: Int) async throws -> Int {
        try await self.appending { connection -> (Int, [AppendedEvent]) in
            let due = try connection.query(
                """
                SELECT \(Self.orderColumns) FROM orders
                WHERE status = 'pending' AND expires_at <= now()
                ORDER BY expires_at LIMIT $1
                FOR UPDATE SKIP LOCKED
                """,
                [limit]
            ).map(Self.order(from:))
            var expired: [AppendedEvent] = []
            for order in due {
                var machine = OrderStateMachine(status: order.status, price: order.price)
                guard case .transition(let from, let to, _) = machine.expiryReached() else { continue }
                expired += try Self.changeStatus(orderID: order.id, from: from, to: to, on: connection)
            }
            return (due.count, expired)
        }
    }
}
