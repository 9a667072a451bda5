import EventLog
public import Foundation
public import Payments
import Postgres

/// An open order a reconciler has claimed: no other reconciler takes it until the claim's lease
/// ends or the step's outcome is written.
public struct ReconciliationClaim: Sendable, Hashable {
    public let order: Order
    /// Queries the schedule has made so far.
    public let queriesMade: Int
    /// Why, and since when, the order is being closed at its provider; `nil` for a scheduled query.
    public let closing: Closing?

    public struct Closing: Sendable, Hashable {
        public let reason: CloseReason
        public let since: Date
    }
}

/// A provider's reconciliation work that is due and not yet taken: what an operator watches to see
/// the reconciler keep up (a provider down or rate-limited makes it grow).
public struct ReconciliationBacklog: Sendable, Hashable {
    public let provider: Provider
    /// Open orders whose step (a query, or a retry of closing) is due and unclaimed.
    public let due: Int
    /// How long the longest-waiting of them has been due; 0 when none is.
    public let oldestDueSeconds: Double
}

extension OrderStore {
    /// Each of `providers`' backlog, read with the claim's own index.
    public func reconciliationBacklog(providers: [Provider]) async throws -> [ReconciliationBacklog] {
        let found: [ReconciliationBacklog] = try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT provider, count(*), extract(epoch FROM now() - min(reconcile_at))::float8
                FROM orders
                WHERE provider = ANY($1::text[]) AND status IN ('pending', 'processing') AND reconcile_at <= now()
                GROUP BY provider
                """,
                [Self.textArray(providers.map(\.rawValue))]
            ).compactMap { row in
                guard let provider = Provider(rawValue: try row.decode(String.self, at: 0)) else { return nil }
                return ReconciliationBacklog(
                    provider: provider,
                    due: try row.decode(Int.self, at: 1),
                    oldestDueSeconds: try row.decode(Double.self, at: 2)
                )
            }
        }
        return providers.map { provider in
            found.first { $0.provider == provider }
                ?? ReconciliationBacklog(provider: provider, due: 0, oldestDueSeconds: 0)
        }
    }

    /// Claims up to `limit` open orders of `providers` whose reconciliation step is due, soonest
    /// first, moving each a `lease` ahead so no other reconciler takes it meanwhile. A pending
    /// order past its deadline starts closing here (`expired`).
    ///
    /// `FOR UPDATE SKIP LOCKED` hands each order to one reconciler, and skips any order whose row
    /// is locked: one a callback is being applied to right now is looked at on the next claim.
    public func claimReconciliations(providers: [Provider], limit: Int, lease: Duration) async throws
        -> [ReconciliationClaim]
    {
        guard !providers.isEmpty, limit > 0 else { return [] }
        return try await self.pool.withConnection { connection in
            try connection.query(
                """
                WITH due AS (
                    SELECT id FROM orders
                    WHERE provider = ANY($1::text[]) AND status IN ('pending', 'processing') AND reconcile_at <= now()
                    ORDER BY reconcile_at LIMIT $2
                    FOR UPDATE SKIP LOCKED
                ), starting AS (
                    SELECT o.id, (o.closing IS NULL AND o.status = 'pending' AND o.expires_at <= now()) AS expiring
                    FROM orders AS o JOIN due USING (id)
                )
                UPDATE orders SET
                    reconcile_at = now() + make_interval(secs => $3),
                    closing = CASE WHEN starting.expiring THEN 'expired' ELSE orders.closing END,
                    closing_since = CASE WHEN starting.expiring THEN now() ELSE orders.closing_since END
                FROM starting WHERE orders.id = starting.id
                RETURNING \(Self.qualifiedOrderColumns), orders.reconcile_queries::bigint, orders.closing,
                    orders.closing_since
                """,
                [Self.textArray(providers.map(\.rawValue)), limit, lease.timeInterval]
            ).map { row in
                let reason = try row.decode(String?.self, at: 13).flatMap(CloseReason.init(rawValue:))
                let since = try row.decode(Date?.self, at: 14)
                return ReconciliationClaim(
                    order: try Self.order(from: row),
                    queriesMade: Int(try row.decode(Int64.self, at: 12)),
                    closing: reason.flatMap { reason in since.map { .init(reason: reason, since: $0) } }
                )
            }
        }
    }

    /// ``orderColumns``, each named with its table, for statements that join another.
    private static let qualifiedOrderColumns = Self.orderColumns.split(separator: ",")
        .map { "orders." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")

    /// Sets when the order is next looked at, and how many queries the schedule has made.
    public func scheduleReconciliation(orderID: String, at date: Date, queriesMade: Int) async throws {
        _ = try await self.pool.withConnection { connection in
            try connection.execute(
                "UPDATE orders SET reconcile_at = $2, reconcile_queries = $3 WHERE id = $1",
                [orderID, date, Int32(clamping: queriesMade)]
            )
        }
    }

    /// Starts closing a pending order for `reason` (a merchant's cancel) and makes it due at once;
    /// returns the order. An order closing already keeps its first reason.
    ///
    /// - Throws: ``OrderStoreError/orderNotFound``, or ``OrderStoreError/notCancelable(_:)`` when it
    ///   is not pending (a repeated cancel of a canceled order is answered as done by the caller).
    public func startClosing(orderID: String, reason: CloseReason) async throws -> Order {
        try await self.pool.withTransaction(isolation: Self.appendIsolation) { connection in
            guard let order = try Self.order(id: orderID, on: connection, lock: true) else {
                throw OrderStoreError.orderNotFound
            }
            guard order.status == .pending else { return order }
            try connection.execute(
                """
                UPDATE orders SET closing = coalesce(closing, $2), closing_since = coalesce(closing_since, now()),
                    reconcile_at = now()
                WHERE id = $1
                """,
                [orderID, reason.rawValue]
            )
            return order
        }
    }

    /// Ends a closing order for its reason (`expired` or `canceled`), when it is still pending:
    /// the payment was closed at the provider, or closing gave up (`alert`, the `close_failed`
    /// message). Returns the order's status afterwards.
    public func finishClosing(orderID: String, reason: CloseReason, alert: String?) async throws -> OrderStatus? {
        let (status, raised): (OrderStatus?, Alert?) = try await self.appending { connection in
            guard let order = try Self.order(id: orderID, on: connection, lock: true) else { return ((nil, nil), []) }
            var machine = OrderStateMachine(status: order.status, price: order.price)
            let transition: (OrderStatus, OrderStatus)?
            switch reason {
            case .expired:
                if case .transition(let from, let to, _) = machine.expiryReached() {
                    transition = (from, to)
                } else {
                    transition = nil
                }
            case .canceled:
                transition = machine.cancelRequested() == .cancel ? (order.status, .canceled) : nil
            }
            try connection.execute(
                "UPDATE orders SET closing = NULL, closing_since = NULL WHERE id = $1",
                [orderID]
            )
            guard let (from, to) = transition else { return ((order.status, nil), []) }
            var writes = Self.statusChange(orderID: orderID, from: from, to: to).map { ($0, Alert?.none) }
            if let alert {
                writes = writes.and(
                    Self.alert(kind: "close_failed", provider: order.provider, orderID: orderID, message: alert)
                )
                .map { ($0.0, Optional($1)) }
            }
            let (appended, raised) = try connection.run(writes)
            return ((to, raised), appended)
        }
        if let raised { self.onAlert?(raised) }
        return status
    }

    /// Stops closing an order that is no longer pending (a payment got under way): it goes on
    /// with its schedule.
    public func stopClosing(orderID: String) async throws {
        _ = try await self.pool.withConnection { connection in
            try connection.execute("UPDATE orders SET closing = NULL, closing_since = NULL WHERE id = $1", [orderID])
        }
    }
}
