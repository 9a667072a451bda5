public import Foundation

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
