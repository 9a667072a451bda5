import EventLog
public import Payments
import Postgres

extension OrderStore {
    /// What recording a verified delivery did. Every outcome is answered with the provider's
    /// success reply: the delivery is safely recorded and retrying it would change nothing.
    public enum DeliveryOutcome: String, Sendable, Hashable, CaseIterable {
        /// The order changed status or gained a progress event.
        case applied
        /// Recorded; late or repeated news, so the order is unchanged.
        case noChange = "no_change"
        /// Recorded; a delivery type the service does not act on.
        case ignored
        /// Recorded with an alert; no order matches the reference.
        case unknownOrder = "unknown_order"
        /// Recorded with an alert; the paid amount or currency differs from the order's.
        case mismatch
        /// Recorded with an alert; the event contradicts the order's state.
        case contradiction
        /// This provider event id was recorded before; nothing was written.
        case duplicate
    }

    /// Records a verified delivery and applies it, in one transaction of two round trips: `BEGIN`
    /// and the order's lock; then, decided by the pure ``OrderStateMachine`` from the locked row,
    /// the inbox row, the status, events and alert, and `COMMIT`. The inbox's unique key turns a
    /// repeat into ``DeliveryOutcome/duplicate``: its insert comes first, so the rest is skipped and
    /// the transaction rolls back.
    public func record(_ delivery: WebhookDelivery) async throws -> DeliveryOutcome {
        do {
            let (outcome, alert) = try await self.appending {
                delivery.orderReference.map(Self.lockOrder(reference:)) ?? .constant(nil)
            } then: { order in
                Self.recording(delivery, order: order)
            }
            if let alert { self.onAlert?(alert) }
            return outcome
        } catch let error as PostgresError
            where error.sqlState == .uniqueViolation && error.constraint == Self.inboxUniqueKey
        {
            return .duplicate
        }
    }

    /// Why the inbox could not hold this delivery, or `nil` when it can: the schema's limits (event
    /// id 1–255, type 1–128, order reference up to 255 code points) and no U+0000 in any text,
    /// which PostgreSQL cannot store. Checked before recording, so such a delivery is refused as
    /// malformed instead of failing in the database on every retry.
    public static func unstorableReason(_ delivery: WebhookDelivery) -> String? {
        func length(_ text: String) -> Int { text.unicodeScalars.count }
        // The paid currency reaches the database in the alert that names a mismatched amount.
        let texts = [
            delivery.eventID, delivery.eventType, delivery.orderReference, delivery.event?.stage,
            delivery.event?.message, delivery.event?.paid?.currency, delivery.paymentReference,
        ]
        if texts.contains(where: { $0?.unicodeScalars.contains("\0") ?? false }) { return "a field contains U+0000" }
        if !(1...255).contains(length(delivery.eventID)) { return "the event id must be 1–255 characters" }
        if !(1...128).contains(length(delivery.eventType)) { return "the event type must be 1–128 characters" }
        if let reference = delivery.orderReference, length(reference) > 255 {
            return "the order reference is longer than 255 characters"
        }
        return nil
    }

    /// The inbox's unique key on (provider, provider_event_id).
    private static let inboxUniqueKey = "webhook_inbox_provider_provider_event_id_key"

    /// What recording the delivery writes, given the order it names (locked), and what it returns:
    /// the outcome, the alert raised, and the events appended to the order's log.
    private static func recording(_ delivery: WebhookDelivery, order: Order?) -> Batch<
        ((DeliveryOutcome, Alert?), [AppendedEvent])
    > {
        var machine = order.map { OrderStateMachine(status: $0.status, price: $0.price) }
        let action: OrderStateMachine.Action?
        if let order, delivery.event != nil, order.provider != delivery.provider {
            // Only the order's own provider can settle it: otherwise any configured provider's
            // secret (the sandbox's, say) could pay an order meant for Stripe.
            action = .reject(
                OrderStateMachine.Alert(
                    kind: .providerMismatch,
                    message:
                        "\(delivery.provider.rawValue) reported \(delivery.eventType) for an order paid through \(order.provider.rawValue)"
                )
            )
        } else {
            action = delivery.event.flatMap { event in machine?.paymentEventReceived(event) }
        }
        let outcome: DeliveryOutcome =
            switch (order, delivery.event, action) {
            case (_, nil, _): .ignored
            case (nil, _, _): .unknownOrder
            case (_, _, .transition?), (_, _, .progress?): .applied
            case (_, _, .reject(let alert)?): alert.kind == .contradiction ? .contradiction : .mismatch
            case (_, _, .ignore?), (_, _, nil): .noChange
            }
        // No ON CONFLICT: a repeat must fail here, so that nothing after it runs. A query that found
        // nothing new is not written at all: the schedule asks many times, and the audit trail is
        // for news.
        let quietQuery = delivery.source == .query && (outcome == .noChange || outcome == .ignored)
        var inbox = Batch<Void>([])
        if !quietQuery {
            inbox = Batch([
                Statement(
                    """
                    INSERT INTO webhook_inbox (provider, provider_event_id, order_reference, order_id, event_type,
                                               outcome, raw_body, source)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    """,
                    [
                        delivery.provider.rawValue, delivery.eventID, delivery.orderReference, order?.id,
                        delivery.eventType, outcome.rawValue, delivery.rawBody, delivery.source.rawValue,
                    ]
                )
            ])
        }
        // The order learns the provider's id for its payment from the first delivery naming it.
        if let order, let reference = delivery.paymentReference, order.providerReference == nil,
            order.provider == delivery.provider
        {
            inbox = inbox.and(
                Batch([
                    Statement(
                        "UPDATE orders SET provider_reference = $2 WHERE id = $1 AND provider_reference IS NULL",
                        [order.id, reference]
                    )
                ])
            ).map { _ in }
        }
        let alert: Batch<Alert?>
        let appended: Batch<[AppendedEvent]>
        switch (order, delivery.event, action) {
        case (let order?, let event?, let action?):
            alert =
                (action.alert.map { ($0.kind.rawValue, $0.message) } ?? Self.missingCallback(delivery, action)).map {
                    Self.alert(kind: $0.0, provider: delivery.provider, orderID: order.id, message: $0.1)
                        .map(Optional.some)
                } ?? .constant(nil)
            appended =
                switch action {
                case .transition(let from, let to, _): Self.statusChange(orderID: order.id, from: from, to: to)
                case .progress: Self.progressEvent(orderID: order.id, event: event).map { [$0] }
                case .reject, .ignore: .constant([])
                }
        case _ where outcome == .unknownOrder:
            alert = Self.alert(
                kind: "unknown_order",
                provider: delivery.provider,
                orderID: nil,
                message:
                    "\(delivery.eventType) \(delivery.eventID) names an unknown order \(delivery.orderReference ?? "(none)")"
            ).map(Optional.some)
            appended = .constant([])
        default:
            alert = .constant(nil)
            appended = .constant([])
        }
        return inbox.and(alert).and(appended).map { written, appended in ((outcome, written.1), appended) }
    }

    /// The `callback_missing` alert (kind, message) for a query that found a payment's outcome:
    /// the provider's callback for it never came (or has not yet). Operators count these.
    private static func missingCallback(_ delivery: WebhookDelivery, _ action: OrderStateMachine.Action)
        -> (String, String)?
    {
        guard delivery.source == .query, case .transition(_, let to, _) = action, to.isFinal || to == .refunded
        else { return nil }
        return (
            "callback_missing",
            "\(to.rawValue) found by querying \(delivery.provider.rawValue) (\(delivery.eventType)); no callback had reported it"
        )
    }

    /// Locks the order a provider names: our id first, else the merchant's order id.
    private static func lockOrder(reference: String) -> Batch<Order?> {
        Batch(
            Statement(
                """
                SELECT \(Self.orderColumns) FROM orders WHERE id = $1 OR merchant_order_id = $1
                ORDER BY (id = $1) DESC LIMIT 1 FOR UPDATE
                """,
                [reference]
            )
        ) { try $0.first.map(Self.order(from:)) }
    }

    /// Sets the status and appends its `status` event, and `finish` when the new status is final;
    /// returns what it appended. The order row must be locked.
    static func statusChange(orderID: String, from: OrderStatus, to: OrderStatus) -> Batch<[AppendedEvent]> {
        let update = Batch([
            Statement(
                "UPDATE orders SET status = $2, updated_at = greatest(now(), updated_at) WHERE id = $1",
                [orderID, to.rawValue]
            )
        ])
        let status = update.and(Self.statusEvent(orderID: orderID, previous: from)).map { [$0.1] }
        guard to.isFinal else { return status }
        let finish = Batch(
            Statement(
                """
                INSERT INTO order_events (order_id, event, data)
                VALUES ($1, 'finish', jsonb_build_object('order_id', $1::text, 'status', $2::text))
                \(Self.returningAppended)
                """,
                [orderID, to.rawValue]
            ),
            read: Self.appended
        )
        return status.and(finish).map { $0 + [$1] }
    }

    private static func progressEvent(orderID: String, event: PaymentEvent) -> Batch<AppendedEvent> {
        Batch(
            Statement(
                """
                INSERT INTO order_events (order_id, event, data)
                VALUES ($1, 'progress', jsonb_strip_nulls(jsonb_build_object(
                    'order_id', $1::text, 'stage', $2::text, 'percent', $3::int, 'message', $4::text)))
                \(Self.returningAppended)
                """,
                [orderID, event.stage, event.percent.map(Int32.init(clamping:)), event.message]
            ),
            read: Self.appended
        )
    }

    /// Records an alert and announces it on ``alertChannel``, in one statement; returns it as the
    /// ops stream shows it.
    static func alert(kind: String, provider: Provider?, orderID: String?, message: String) -> Batch<Alert> {
        Batch(
            Statement(
                """
                WITH alert AS (
                    INSERT INTO alerts (kind, provider, order_id, message) VALUES ($1, $2, $3, left($4, 2000)) RETURNING *
                )
                SELECT id, \(Self.alertJSON), pg_notify($5, id::text) FROM alert
                """,
                [kind, provider?.rawValue, orderID, message, Self.alertChannel]
            )
        ) { rows in
            guard let row = rows.first else {
                throw PostgresError(kind: .decoding, message: "an insert into alerts returned no row")
            }
            return Alert(id: try row.decode(Int64.self, at: 0), data: try row.decode(String.self, at: 1))
        }
    }
}

extension OrderStore {
    /// Records an alert that no transaction of the flow raised itself (a refused signature, say):
    /// one statement, so one round trip.
    public func recordAlert(kind: String, provider: Provider?, orderID: String?, message: String) async throws {
        let alert = try await self.pool.withConnection { connection in
            try connection.run(Self.alert(kind: kind, provider: provider, orderID: orderID, message: message))
        }
        self.onAlert?(alert)
    }
}
