/// The replay of one order stream as a value: each event id at most once, in increasing order, and
/// nothing after `finish`.
///
/// A stream registers with the hub before it reads the log, so an event committed while it
/// replays is both in the replay and held by the hub; the hub writes only ids above the cursor the
/// replay reached (``StreamHub/goLive(_:cursor:sink:now:onEnd:)``), and ids within an order
/// commit in increasing order, so each goes out once.
public struct OrderStreamStateMachine: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        /// Sending; `lastSent` is the cursor a reconnect would resume from.
        case open(lastSent: Int64)
        /// `finish` was sent: nothing more goes out.
        case ended
    }

    /// What to do with an event of the replay.
    public enum EventAction: Sendable, Hashable {
        case send
        /// Send it, then end the stream: it is the order's `finish`.
        case sendAndEnd
        /// Already sent, or the stream has ended.
        case drop
    }

    public private(set) var state: State

    /// - Parameter cursor: the id after which events are sent (the client's Last-Event-ID, or the
    ///   snapshot's id).
    public init(cursor: Int64) {
        self.state = .open(lastSent: cursor)
    }

    public mutating func eventArrived(id: Int64, isFinish: Bool) -> EventAction {
        guard case .open(let lastSent) = self.state, id > lastSent else { return .drop }
        self.state = isFinish ? .ended : .open(lastSent: id)
        return isFinish ? .sendAndEnd : .send
    }

    /// The id a reconnect would resume from; `nil` once `finish` was sent.
    public var lastSent: Int64? {
        guard case .open(let lastSent) = self.state else { return nil }
        return lastSent
    }

    public var isEnded: Bool { self.state == .ended }
}
