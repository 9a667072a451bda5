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

    public init(status: String, latestEventID: Int64, finishEventID: Int64?) {
        self.status = status
        self.latestEventID = latestEventID
        self.finishEventID = finishEventID
    }
}
