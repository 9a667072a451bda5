public import EventLog
import Foundation
import Postgres

extension OrderStore: OrderLog {
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
