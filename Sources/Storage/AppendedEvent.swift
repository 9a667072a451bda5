import EventLog

/// One insert into the log, and the order's newest id before it.
struct AppendedEvent: Sendable, Hashable {
    let event: OrderEvent
    let predecessor: Int64
}

extension CommittedEvents {
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
