/// One order stream's delivery rules as a value: each event id at most once, in increasing order,
/// an end after `finish`, a keepalive after a quiet spell and an end when the stream is too old.
///
/// A stream registers with the hub before it reads the log, so an event committed while it
/// replays reaches it twice: from the replay and from its live buffer (which it reads after the
/// replay). The machine sends the first and drops the second, because it sends only ids above the
/// last one sent, and ids within an order commit in increasing order.
public struct OrderStreamStateMachine: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        /// Sending; `lastSent` is the cursor a reconnect would resume from.
        case open(lastSent: Int64, lastWrite: ContinuousClock.Instant)
        /// Nothing more goes out: `finish` was sent, the stream aged out or the server is stopping.
        case ended
    }

    /// What to do with an event.
    public enum EventAction: Sendable, Hashable {
        case send
        /// Send it, then end the stream: it is the order's `finish`.
        case sendAndEnd
        /// Already sent, or the stream has ended.
        case drop
    }

    /// What to do when the clock ticks.
    public enum TickAction: Sendable, Hashable {
        case nothing
        /// The stream was quiet for a heartbeat interval: send a comment so proxies keep it.
        case sendKeepalive
        /// The stream reached its maximum age: end it (the client resumes with Last-Event-ID).
        case end
    }

    public private(set) var state: State
    private let openedAt: ContinuousClock.Instant
    private let heartbeat: Duration
    private let maximumAge: Duration

    /// - Parameters:
    ///   - cursor: the id after which events are sent (the client's Last-Event-ID, or the snapshot's id).
    ///   - now: when the stream opened (its first bytes count as a write).
    public init(cursor: Int64, now: ContinuousClock.Instant, heartbeat: Duration, maximumAge: Duration) {
        self.state = .open(lastSent: cursor, lastWrite: now)
        self.openedAt = now
        self.heartbeat = heartbeat
        self.maximumAge = maximumAge
    }

    /// An event from the replay or from the live buffer.
    public mutating func eventArrived(id: Int64, isFinish: Bool, now: ContinuousClock.Instant) -> EventAction {
        guard case .open(let lastSent, _) = self.state, id > lastSent else { return .drop }
        self.state = isFinish ? .ended : .open(lastSent: id, lastWrite: now)
        return isFinish ? .sendAndEnd : .send
    }

    /// The hub ticked: it has handed this stream nothing for a heartbeat interval (or the stream
    /// is old). The hub does not see what the stream wrote itself (the snapshot, the replay), so a
    /// keepalive goes out unless the stream wrote within the last half interval.
    public mutating func tick(now: ContinuousClock.Instant) -> TickAction {
        guard case .open(let lastSent, let lastWrite) = self.state else { return .nothing }
        if now - self.openedAt >= self.maximumAge {
            self.state = .ended
            return .end
        }
        guard now - lastWrite >= self.heartbeat / 2 else { return .nothing }
        self.state = .open(lastSent: lastSent, lastWrite: now)
        return .sendKeepalive
    }

    /// The server is stopping (or the stream was told to end): returns true if the stream was still
    /// open, so the caller sends its parting `retry:` once.
    public mutating func endRequested() -> Bool {
        guard case .open = self.state else { return false }
        self.state = .ended
        return true
    }

    /// The id a reconnect would resume from; `nil` once ended by `finish` or otherwise.
    public var lastSent: Int64? {
        guard case .open(let lastSent, _) = self.state else { return nil }
        return lastSent
    }

    public var isEnded: Bool { self.state == .ended }
}
