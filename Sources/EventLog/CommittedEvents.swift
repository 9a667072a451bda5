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
}
