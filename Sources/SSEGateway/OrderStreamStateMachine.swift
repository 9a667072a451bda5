/// One order stream's delivery rules as a value: register, then replay, then live, with no gap and
/// no duplicate, and an end after `finish`.
///
/// The stream registers with the hub before it reads the log, so an event committed while it
/// replays is both in the replay and in its live buffer. The machine sends each id once, in
/// increasing order: live events at or below the last id sent are dropped, and live events that
/// arrive during the replay wait until it is done (the replay may still deliver them itself).
public struct OrderStreamStateMachine: Sendable, Hashable {
    /// Where the stream is.
    public enum State: Sendable, Hashable {
        /// Sending the log after `lastSent`; live events are held back.
        case replaying(lastSent: Int64, held: [Int64])
        /// Sending live events as they come.
        case live(lastSent: Int64)
        /// `finish` was sent (or the stream ended otherwise); nothing more goes out.
        case finished
    }

    /// What to do with an event.
    public enum EventAction: Sendable, Hashable {
        case send
        /// Send it, then end the stream: it is the order's `finish`.
        case sendAndFinish
        /// Already sent, or the stream has ended.
        case drop
        /// Keep it until the replay is done.
        case hold
    }

    public private(set) var state: State

    /// - Parameter lastEventID: the client's `Last-Event-ID`, or 0 to start from the beginning.
    public init(lastEventID: Int64) {
        self.state = .replaying(lastSent: lastEventID, held: [])
    }

    /// An event read from the log during the replay.
    public mutating func replayed(id: Int64, isFinish: Bool) -> EventAction {
        guard case .replaying(let lastSent, let held) = self.state else { return .drop }
        guard id > lastSent else { return .drop }
        self.state = isFinish ? .finished : .replaying(lastSent: id, held: held)
        return isFinish ? .sendAndFinish : .send
    }

    /// A live event from the hub.
    public mutating func liveEventArrived(id: Int64, isFinish: Bool) -> EventAction {
        switch self.state {
        case .replaying(let lastSent, var held):
            guard id > lastSent else { return .drop }
            held.append(id)
            self.state = .replaying(lastSent: lastSent, held: held)
            return .hold
        case .live(let lastSent):
            guard id > lastSent else { return .drop }
            self.state = isFinish ? .finished : .live(lastSent: id)
            return isFinish ? .sendAndFinish : .send
        case .finished:
            return .drop
        }
    }

    /// The replay read everything up to the log's end. Returns the held ids still to send, in order
    /// (the caller sends them through ``liveEventArrived(id:isFinish:)``'s rules by replaying them).
    public mutating func replayFinished() -> [Int64] {
        guard case .replaying(let lastSent, let held) = self.state else { return [] }
        self.state = .live(lastSent: lastSent)
        return held.filter { $0 > lastSent }.sorted()
    }

    /// The id last sent, for reconnect bookkeeping (`nil` once finished).
    public var lastSent: Int64? {
        switch self.state {
        case .replaying(let lastSent, _), .live(let lastSent): lastSent
        case .finished: nil
        }
    }
}
