public import EventLog
import Postgres

/// Where a reader of every order's events stands: just after the event `eventID`, inserted by
/// transaction `transaction` (migration 0005 says why the feed is ordered by both).
public struct FeedPosition: Sendable, Hashable {
    /// The inserting transaction's id (`xid8`), as PostgreSQL writes it.
    let transaction: String
    public let eventID: Int64

    /// Before every event.
    public static let start = FeedPosition(transaction: "0", eventID: 0)
}

extension OrderStore {
    /// The events of every order after `position`, in the feed's order, that no transaction still
    /// running can precede; at most `limit`. Returns them and the position after the last.
    public func feed(after position: FeedPosition, limit: Int) async throws -> ([OrderEvent], FeedPosition) {
        try await self.pool.withConnection { connection in
            var next = position
            let events = try connection.query(
                """
                SELECT \(Self.eventColumns), xid::text FROM order_events
                WHERE (xid, id) > ($1::xid8, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY xid, id LIMIT $3
                """,
                [position.transaction, position.eventID, limit]
            ).map { row in
                let event = try Self.event(from: row)
                next = FeedPosition(transaction: try row.decode(String.self, at: 5), eventID: event.id)
                return event
            }
            return (events, next)
        }
    }

    /// The position after the newest event readable now: where a reader that wants only what
    /// comes next starts.
    public func feedHead() async throws -> FeedPosition {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT xid::text, id FROM order_events WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY xid DESC, id DESC LIMIT 1
                """
            ).first.map {
                FeedPosition(transaction: try $0.decode(String.self, at: 0), eventID: try $0.decode(Int64.self, at: 1))
            }
                ?? .start
        }
    }

    /// The position just after event `id`, or `nil` when the log has no such event.
    public func feedPosition(afterEvent id: Int64) async throws -> FeedPosition? {
        try await self.pool.withConnection { connection in
            try connection.query("SELECT xid::text FROM order_events WHERE id = $1", [id]).first.map {
                FeedPosition(transaction: try $0.decode(String.self, at: 0), eventID: id)
            }
        }
    }
}
