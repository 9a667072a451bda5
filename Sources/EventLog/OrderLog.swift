/// The two reads a new order stream makes of the log: where it starts, and the events after a
/// point. The store implements it over PostgreSQL; the gateway sees nothing else of the database.
public protocol OrderLog: Sendable {
    /// The order's latest status and its log's newest and last `finish` ids, read together;
    /// `nil` when no such order exists.
    func streamStart(orderID: String) async throws -> StreamStart?

    /// The events of an order after `after`, oldest first, at most `limit`.
    func events(orderID: String, after: Int64, limit: Int) async throws -> [OrderEvent]
}
