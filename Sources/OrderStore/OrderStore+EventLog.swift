public import Foundation
import Postgres

/// One event of an order's log, as streams deliver it.
public struct OrderEvent: Sendable, Hashable {
    /// The log's id: increasing within an order, and the stream's `id:`.
    public let id: Int64
    public let orderID: String
    /// `status`, `progress`, `finish`, or a merchant's own name.
    public let name: String
    /// JSON object text.
    public let data: String
    /// When the transaction that wrote it began (the database's clock).
    public let createdAt: Date

    public init(id: Int64, orderID: String, name: String, data: String, createdAt: Date) {
        self.id = id
        self.orderID = orderID
        self.name = name
        self.data = data
        self.createdAt = createdAt
    }

    public var isFinish: Bool { self.name == "finish" }
}

/// Where a new stream starts: the order's latest `status` and the log's ids around it.
public struct StreamStart: Sendable, Hashable {
    /// The latest `status` event's data: the order as it is now.
    public let status: String
    /// The newest event id of the order.
    public let latestEventID: Int64
    /// The id of the order's last `finish` event, once it has one. An order has two when a
    /// payment succeeded after it had failed, been canceled or expired (`paid_after_final`): the
    /// later one ends streams, and the earlier is not sent.
    public let finishEventID: Int64?
}

/// Events one transaction appended to an order's log and committed, in id order, with the id that
/// preceded the first of them there (0 for none). A stream whose last event is `predecessor` can
/// have them at once, without reading the log: no event of the order lies between.
public struct CommittedEvents: Sendable, Hashable {
    public let orderID: String
    public let predecessor: Int64
    public let events: [OrderEvent]

    public init(orderID: String, predecessor: Int64, events: [OrderEvent]) {
        self.orderID = orderID
        self.predecessor = predecessor
        self.events = events
    }

    /// Groups a transaction's appends into runs per order, each event following the previous one.
    static func grouping(_ appended: [AppendedEvent]) -> [CommittedEvents] {
        var runs: [(orderID: String, predecessor: Int64, events: [OrderEvent])] = []
        for append in appended.sorted(by: { ($0.event.orderID, $0.event.id) < ($1.event.orderID, $1.event.id) }) {
            if let last = runs.last, last.orderID == append.event.orderID, last.events.last?.id == append.predecessor {
                runs[runs.count - 1].events.append(append.event)
            } else {
                runs.append((append.event.orderID, append.predecessor, [append.event]))
            }
        }
        return runs.map { CommittedEvents(orderID: $0.orderID, predecessor: $0.predecessor, events: $0.events) }
    }
}

/// One insert into the log, and the order's newest id before it.
struct AppendedEvent: Sendable, Hashable {
    let event: OrderEvent
    let predecessor: Int64
}

/// A notification on ``OrderStore/notificationChannel``: these orders' logs grew. It names orders
/// only; the relays read the events from the log, which is the truth.
public struct Announcement: Sendable, Hashable {
    public let orderIDs: [String]

    /// Reads a payload as ``ChangeNotifier`` writes it; `nil` for anything else.
    public init?(payload: String) {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(payload.utf8)) else { return nil }
        self.orderIDs = wire.orders
    }

    /// The payloads that name `orderIDs`, each at most `maximumBytes` long.
    static func payloads(for orderIDs: [String], maximumBytes: Int) -> [String] {
        let encoder = JSONEncoder()
        var payloads: [String] = []
        var batch: [String] = []
        var size = #"{"orders":[]}"#.utf8.count
        func flush() {
            guard !batch.isEmpty, let data = try? encoder.encode(Wire(orders: batch)) else { return }
            payloads.append(String(decoding: data, as: UTF8.self))
            batch.removeAll()
            size = #"{"orders":[]}"#.utf8.count
        }
        for id in orderIDs {
            // Quotes and a comma around each id; our ids need no escaping (the schema's CHECK).
            let cost = id.utf8.count + 3
            if size + cost > maximumBytes { flush() }
            batch.append(id)
            size += cost
        }
        flush()
        return payloads
    }

    private struct Wire: Codable {
        let orders: [String]
    }
}

/// An alert as the ops stream shows it.
public struct Alert: Sendable, Hashable {
    public let id: Int64
    /// JSON object text: id, kind, provider, order_id, message, created_at.
    public let data: String

    public init(id: Int64, data: String) {
        self.id = id
        self.data = data
    }
}

extension OrderStore {
    /// The events of an order after `after`, oldest first, at most `limit`.
    public func events(orderID: String, after: Int64, limit: Int) async throws -> [OrderEvent] {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT \(Self.eventColumns) FROM order_events
                WHERE order_id = $1 AND id > $2 ORDER BY id LIMIT $3
                """,
                [orderID, after, limit]
            ).map(Self.event(from:))
        }
    }

    /// The events after each order's own cursor, for many orders in one statement: ordered by order,
    /// then id; at most `limitPerOrder` per order (the caller asks again for an order that filled it).
    public func events(after cursors: [String: Int64], limitPerOrder: Int) async throws -> [OrderEvent] {
        guard !cursors.isEmpty else { return [] }
        let cursorsJSON = try Self.cursorsJSON(cursors)
        return try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT e.id, e.order_id, e.event, e.data::text, extract(epoch FROM e.created_at)::float8
                FROM jsonb_to_recordset($1::jsonb) AS c(order_id text, after text)
                CROSS JOIN LATERAL (
                    SELECT * FROM order_events
                    WHERE order_id = c.order_id AND id > c.after::bigint ORDER BY id LIMIT $2
                ) AS e
                ORDER BY e.order_id, e.id
                """,
                [cursorsJSON, limitPerOrder]
            ).map(Self.event(from:))
        }
    }

    /// The orders whose logs hold events above `eventID`, each with its newest id: what a relay
    /// checks periodically, so that an event whose notification was lost is found.
    public func ordersWithEvents(after eventID: Int64) async throws -> [String: Int64] {
        try await self.pool.withConnection { connection in
            var orders: [String: Int64] = [:]
            for row in try connection.query(
                "SELECT order_id, max(id) FROM order_events WHERE id > $1 GROUP BY order_id",
                [eventID]
            ) {
                orders[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
            }
            return orders
        }
    }

    /// Those of the orders whose logs hold events above their cursors.
    public func ordersBehind(_ cursors: [String: Int64]) async throws -> Set<String> {
        guard !cursors.isEmpty else { return [] }
        let cursorsJSON = try Self.cursorsJSON(cursors)
        return try await self.pool.withConnection { connection in
            Set(
                try connection.query(
                    """
                    SELECT c.order_id FROM jsonb_to_recordset($1::jsonb) AS c(order_id text, after text)
                    WHERE EXISTS (SELECT 1 FROM order_events WHERE order_id = c.order_id AND id > c.after::bigint)
                    """,
                    [cursorsJSON]
                ).map { try $0.decode(String.self, at: 0) }
            )
        }
    }

    /// The newest id in the whole log, 0 when it is empty.
    public func newestEventID() async throws -> Int64 {
        try await self.pool.withConnection { connection in
            try connection.query("SELECT coalesce(max(id), 0) FROM order_events").first!.decode(Int64.self, at: 0)
        }
    }

    /// The order's latest status and its log's newest and last `finish` ids, read in one statement;
    /// `nil` when no such order exists.
    public func streamStart(orderID: String) async throws -> StreamStart? {
        try await self.pool.withConnection { connection in
            guard
                let row = try connection.query(
                    """
                    SELECT
                        (SELECT data::text FROM order_events WHERE order_id = $1 AND event = 'status'
                         ORDER BY id DESC LIMIT 1),
                        (SELECT max(id) FROM order_events WHERE order_id = $1),
                        (SELECT max(id) FROM order_events WHERE order_id = $1 AND event = 'finish')
                    """,
                    [orderID]
                ).first,
                let status = try row.decode(String?.self, at: 0)
            else { return nil }
            return StreamStart(
                status: status,
                latestEventID: try row.decode(Int64.self, at: 1),
                finishEventID: try row.decode(Int64?.self, at: 2)
            )
        }
    }

    /// An alert row as the ops stream shows it (``Alert/data``).
    static let alertJSON = """
        jsonb_build_object('id', id, 'kind', kind, 'provider', provider, 'order_id', order_id, 'message', message,
                           'created_at', created_at)::text
        """

    /// An alert by id, as JSON for the ops stream.
    public func alert(id: Int64) async throws -> Alert? {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT id, \(Self.alertJSON) FROM alerts WHERE id = $1
                """,
                [id]
            ).first.map { row in Alert(id: try row.decode(Int64.self, at: 0), data: try row.decode(String.self, at: 1))
            }
        }
    }

    /// Cursors travel as one JSON parameter: no statement text is built from them.
    private static func cursorsJSON(_ cursors: [String: Int64]) throws -> String {
        String(
            decoding: try JSONEncoder().encode(cursors.map { ["order_id": $0.key, "after": String($0.value)] }),
            as: UTF8.self
        )
    }

    static let eventColumns = "id, order_id, event, data::text, extract(epoch FROM created_at)::float8"

    static func event(from row: Row) throws -> OrderEvent {
        OrderEvent(
            id: try row.decode(Int64.self, at: 0),
            orderID: try row.decode(String.self, at: 1),
            name: try row.decode(String.self, at: 2),
            data: try row.decode(String.self, at: 3),
            createdAt: Date(timeIntervalSince1970: try row.decode(Double.self, at: 4))
        )
    }
}
