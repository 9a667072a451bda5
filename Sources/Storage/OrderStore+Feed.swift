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
    /// What one read of the feed found.
    public struct FeedPage: Sendable {
        public let events: [OrderEvent]
        /// The position after the last event read.
        public let next: FeedPosition
        /// Events past `next` have committed but wait for an older transaction still running: read
        /// again shortly rather than at the next notification, which may be long in coming.
        public let heldBack: Bool
    }

    /// The events of every order after `position`, in the feed's order, that no transaction still
    /// running can precede; at most `limit`. One round trip for the read and the held-back check.
    public func feed(after position: FeedPosition, limit: Int) async throws -> FeedPage {
        try await self.pool.withConnection { connection in
            let read = Batch(
                Statement(
                    """
                    SELECT \(Self.eventColumns), xid::text FROM order_events
                    WHERE (xid, id) > ($1::xid8, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
                    ORDER BY xid, id LIMIT $3
                    """,
                    [position.transaction, position.eventID, limit]
                )
            ) { rows in
                try rows.map { row in
                    (
                        try Self.event(from: row),
                        FeedPosition(
                            transaction: try row.decode(String.self, at: 5),
                            eventID: try row.decode(Int64.self, at: 0)
                        )
                    )
                }
            }
            let heldBack = Batch(
                Statement(
                    """
                    SELECT EXISTS (SELECT 1 FROM order_events
                                   WHERE xid >= pg_snapshot_xmin(pg_current_snapshot()) AND (xid, id) > ($1::xid8, $2))
                    """,
                    [position.transaction, position.eventID]
                )
            ) { try $0.first!.decode(Bool.self, at: 0) }
            let (rows, waiting) = try connection.run(read.and(heldBack))
            return FeedPage(events: rows.map(\.0), next: rows.last?.1 ?? position, heldBack: waiting)
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
