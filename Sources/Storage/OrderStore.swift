public import EventLog
import Foundation
import Payments
public import Postgres

/// Every SQL statement of the payment flow: orders, the webhook inbox, the event log and alerts.
///
/// Whatever changes an order locks its row first (`SELECT … FOR UPDATE`) and appends to its event
/// log in the same transaction, so the events of one order commit in id order and a replay by
/// `id > Last-Event-ID` cannot skip one. Once such a transaction has committed, the order is
/// announced to the ``ChangeNotifier``, which NOTIFYs every instance, and its new events are handed
/// to `onCommit` (``CommittedEvents``), for this instance's own streams; an alert, announced on its
/// own channel, is handed to `onAlert` once committed, for this instance's ops streams.
///
/// Those transactions, and creates, run at READ COMMITTED whatever the database's default, so each
/// statement after a lock sees everything committed before the lock was granted: the previous id
/// an append reports is the true one, and a create finds the order a racing request with its key
/// made. (At REPEATABLE READ the snapshot is taken before the lock is granted, and misses what
/// committed while the transaction waited.)
public struct OrderStore: Sendable {
    /// The channel every instance listens on; the payload names orders (``Announcement``).
    public static let notificationChannel = "order_events"
    /// The channel alerts are announced on (payload: the alert id).
    public static let alertChannel = "alerts"

    let pool: ConnectionPool
    /// Told of every order whose log a committed transaction grew; `nil` announces nothing (tests
    /// of the store alone).
    let notifier: ChangeNotifier?
    /// Told of the events each committed transaction appended, with where they follow on.
    let onCommit: (@Sendable ([CommittedEvents]) -> Void)?
    /// Told of each alert this instance raised, once committed.
    let onAlert: (@Sendable (Alert) -> Void)?

    public init(
        pool: ConnectionPool,
        notifier: ChangeNotifier?,
        onCommit: (@Sendable ([CommittedEvents]) -> Void)? = nil,
        onAlert: (@Sendable (Alert) -> Void)? = nil
    ) {
        self.pool = pool
        self.notifier = notifier
        self.onCommit = onCommit
        self.onAlert = onAlert
    }

    /// The isolation of every transaction that appends to the log (see above).
    static let appendIsolation = Connection.IsolationLevel.readCommitted

    // MARK: Orders

    /// The outcome of a create: a new order, or the one an earlier identical request made.
    public enum CreateOutcome: Sendable, Hashable {
        case created(Order)
        case replayed(Order)
    }

    /// Creates an order with its first `status` event, or returns the order an identical earlier
    /// request created (same Idempotency-Key, or same merchant_order_id, with the same request hash).
    ///
    /// - Throws: ``OrderStoreError/idempotencyKeyReused`` or ``OrderStoreError/merchantOrderIDReused``
    ///   when the key or id came with a different request.
    public func create(_ new: NewOrder, idempotencyKey: String?, requestHash: String) async throws -> CreateOutcome {
        let id = OrderID.generate()
        return try await self.pool.withTransaction(isolation: Self.appendIsolation) { connection in
            if let idempotencyKey,
                let earlier = try Self.earlierRequest(
                    idempotencyKey: idempotencyKey,
                    requestHash: requestHash,
                    on: connection
                )
            {
                // A key that appended an event is not this request's, whatever its hash.
                guard earlier.eventID == nil else { throw OrderStoreError.idempotencyKeyReused }
                return .replayed(try Self.order(id: earlier.orderID, on: connection)!)
            }
            // Requests with the same merchant id queue here, as those with the same key do in
            // `earlierRequest`, so a retry racing the first attempt finds its order instead of
            // failing on a unique constraint.
            if let merchantOrderID = new.merchantOrderID {
                try Self.claim("merchant:" + merchantOrderID, on: connection)
            }
            if let merchantOrderID = new.merchantOrderID,
                let earlier = try connection.query(
                    "SELECT request_hash, id FROM orders WHERE merchant_order_id = $1",
                    [merchantOrderID]
                ).first
            {
                guard try earlier.decode(String?.self, at: 0) == requestHash else {
                    throw OrderStoreError.merchantOrderIDReused
                }
                let order = try Self.order(id: try earlier.decode(String.self, at: 1), on: connection)!
                try Self.rememberKey(idempotencyKey, requestHash: requestHash, orderID: order.id, on: connection)
                return .replayed(order)
            }
            try connection.execute(
                """
                INSERT INTO orders (id, merchant_order_id, amount, currency, provider, description, metadata,
                                    expires_at, request_hash, provider_reference, reconcile_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now() + make_interval(secs => $8), $9, $10,
                        CASE WHEN $11::float8 IS NOT NULL THEN now() + make_interval(secs => least($11, $8)) END)
                """,
                [
                    id, new.merchantOrderID, new.price.amount, new.price.currency, new.provider.rawValue,
                    new.description,
                    new.metadata, Double(new.expiresIn), requestHash, new.providerReference,
                    new.firstQueryAfter?.timeInterval,
                ]
            )
            try Self.rememberKey(idempotencyKey, requestHash: requestHash, orderID: id, on: connection)
            try connection.run(Self.statusEvent(orderID: id, previous: nil))
            return .created(try Self.order(id: id, on: connection)!)
        }
    }

    /// The order with this id, if there is one.
    public func order(id: String) async throws -> Order? {
        try await self.pool.withConnection { try Self.order(id: id, on: $0) }
    }

    // MARK: Helpers shared by the transactions

    /// What an earlier request with this Idempotency-Key did: the order it created (or found), or
    /// the event it appended (with its order); `nil` when none came before. The key is claimed
    /// first, until the transaction ends: requests with the same key queue there, so a retry
    /// racing the first attempt finds what it did instead of failing on the key's unique
    /// constraint. (Keys are claimed before merchant ids, so two requests never wait on each other.)
    ///
    /// - Throws: ``OrderStoreError/idempotencyKeyReused`` when the key came with another request.
    static func earlierRequest(idempotencyKey: String, requestHash: String, on connection: Connection) throws
        -> (orderID: String, eventID: Int64?)?
    {
        try Self.claim("key:" + idempotencyKey, on: connection)
        guard
            let row = try connection.query(
                "SELECT request_hash, order_id, event_id FROM idempotency_keys WHERE key = $1",
                [idempotencyKey]
            ).first
        else { return nil }
        guard try row.decode(String.self, at: 0) == requestHash else { throw OrderStoreError.idempotencyKeyReused }
        return (try row.decode(String.self, at: 1), try row.decode(Int64?.self, at: 2))
    }

    /// Waits for, then holds until the transaction ends, an advisory lock on `name`.
    private static func claim(_ name: String, on connection: Connection) throws {
        try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [name])
    }

    /// Remembers what a request with an Idempotency-Key did (``earlierRequest(idempotencyKey:requestHash:on:)``).
    static func rememberKey(
        _ key: String?,
        requestHash: String,
        orderID: String,
        eventID: Int64? = nil,
        on connection: Connection
    ) throws {
        guard let key else { return }
        try connection.execute(
            "INSERT INTO idempotency_keys (key, request_hash, order_id, event_id) VALUES ($1, $2, $3, $4)",
            [key, requestHash, orderID, eventID]
        )
    }

    static let orderColumns = """
        id, merchant_order_id, amount, currency, provider, status, description, metadata::text, expires_at,
        created_at, updated_at, provider_reference
        """

    static func order(id: String, on connection: Connection, lock: Bool = false) throws -> Order? {
        let sql = "SELECT \(orderColumns) FROM orders WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        return try connection.query(sql, [id]).first.map(Self.order(from:))
    }

    static func order(from row: Row) throws -> Order {
        Order(
            id: try row.decode(String.self, at: 0),
            merchantOrderID: try row.decode(String?.self, at: 1),
            price: Money(amount: try row.decode(Int64.self, at: 2), currency: try row.decode(String.self, at: 3)),
            provider: try Self.enumValue(Provider.self, try row.decode(String.self, at: 4)),
            status: try Self.enumValue(OrderStatus.self, try row.decode(String.self, at: 5)),
            description: try row.decode(String?.self, at: 6),
            metadata: try row.decode(String.self, at: 7),
            expiresAt: try row.decode(Date.self, at: 8),
            createdAt: try row.decode(Date.self, at: 9),
            updatedAt: try row.decode(Date.self, at: 10),
            providerReference: try row.decode(String?.self, at: 11)
        )
    }

    /// The schema's CHECK constraints keep these columns to known values; anything else is corruption.
    private static func enumValue<T: RawRepresentable>(_: T.Type, _ text: String) throws -> T
    where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            throw PostgresError(kind: .decoding, message: "unknown \(T.self) \"\(text)\"")
        }
        return value
    }

    /// Appends a `status` event built from the order row as it is now.
    static func statusEvent(orderID: String, previous: OrderStatus?) -> Batch<AppendedEvent> {
        Batch(
            Statement(
                """
                INSERT INTO order_events (order_id, event, data)
                SELECT id, 'status', jsonb_build_object(
                    'order_id', id, 'status', status, 'previous', $2::text, 'amount', amount, 'currency', currency,
                    'updated_at', updated_at)
                FROM orders WHERE id = $1
                \(Self.returningAppended)
                """,
                [orderID, previous?.rawValue]
            ),
            read: Self.appended
        )
    }

    /// Appends an event with the given data (JSON object text).
    static func event(orderID: String, name: String, data: String) -> Batch<AppendedEvent> {
        Batch(
            Statement(
                "INSERT INTO order_events (order_id, event, data) VALUES ($1, $2, $3::jsonb) \(Self.returningAppended)",
                [orderID, name, data]
            ),
            read: Self.appended
        )
    }

    /// What every insert into the log returns: the event, and the order's newest id before it. The
    /// subquery reads the statement's snapshot, which does not hold the row being inserted; the
    /// order's row lock keeps any other transaction from appending to the order meanwhile.
    static let returningAppended = """
        RETURNING \(eventColumns),
            coalesce((SELECT max(p.id) FROM order_events AS p WHERE p.order_id = order_events.order_id), 0)
        """

    static func appended(_ rows: QueryResult) throws -> AppendedEvent {
        guard let row = rows.first else {
            throw PostgresError(kind: .decoding, message: "an insert into order_events returned no row")
        }
        return AppendedEvent(event: try Self.event(from: row), predecessor: try row.decode(Int64.self, at: 5))
    }

    /// Sends the notifications ``ChangeNotifier`` prepared, in one statement (one commit).
    static func notify(_ payloads: [String], on connection: Connection) throws {
        let array = String(decoding: try JSONEncoder().encode(payloads), as: UTF8.self)
        try connection.execute(
            "SELECT pg_notify($1, payload) FROM jsonb_array_elements_text($2::jsonb) AS payload",
            [Self.notificationChannel, array]
        )
    }

    /// A `text[]` literal of `values` (each quoted, `"` and `\` escaped), for `= ANY($n::text[])`.
    static func textArray(_ values: [String]) -> String {
        let quoted = values.map { value in
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }

    /// PostgreSQL refuses payloads of 8000 bytes or more; keep a margin.
    static let maximumPayloadBytes = 7900

    /// Runs `body` in a transaction that appends to the log (at ``appendIsolation``), and hands what
    /// it appended to the notifier and to `onCommit` on the connection's thread as soon as `COMMIT`
    /// returned: this instance's streams then need not wait for the hop back to the caller.
    func appending<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> (T, [AppendedEvent])) async throws
        -> T
    {
        try await self.pool.withConnection { connection in
            let (value, appended) = try connection.transaction(isolation: Self.appendIsolation, body)
            self.announce(appended)
            return value
        }
    }

    /// ``appending(_:)`` in two round trips (``Connection/transaction(isolation:opening:then:)``):
    /// `BEGIN` with `opening`, then the writes `decide` returns with `COMMIT`.
    func appending<Opened, T: Sendable>(
        opening: @escaping @Sendable () -> Batch<Opened>,
        then decide: @escaping @Sendable (Opened) throws -> Batch<(T, [AppendedEvent])>
    ) async throws -> T {
        try await self.pool.withConnection { connection in
            let (value, appended) = try connection.transaction(
                isolation: Self.appendIsolation,
                opening: opening(),
                then: decide
            )
            self.announce(appended)
            return value
        }
    }

    /// Hands what a committed transaction appended to the notifier (the orders) and to `onCommit`
    /// (the events).
    func announce(_ appended: [AppendedEvent]) {
        guard !appended.isEmpty else { return }
        let committed = CommittedEvents.grouping(appended)
        self.notifier?.announce(committed.map(\.orderID))
        self.onCommit?(committed)
    }
}

/// Order ids: `ord_` and 26 characters of base-32 randomness (130 bits), never derived from anything
/// an attacker could know, and short enough for WeChat Pay's 32-character out_trade_no.
enum OrderID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "ord_" + String((0..<26).map { _ in alphabet[Int(generator.next(upperBound: UInt8(32)))] })
    }
}
