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
