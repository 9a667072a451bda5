import Synchronization

/// One event of an order's log, as the gateway delivers it.
public struct OrderEvent: Sendable, Hashable {
    /// The log's id: increasing within an order, and the stream's `id:`.
    public let id: Int64
    public let orderID: String
    /// `status`, `progress`, `finish`, or a merchant's own name.
    public let name: String
    /// JSON object text.
    public let data: String

    public init(id: Int64, orderID: String, name: String, data: String) {
        self.id = id
        self.orderID = orderID
        self.name = name
        self.data = data
    }

    public var isFinish: Bool { self.name == "finish" }
}

/// Fans live events out to the open streams of each order, on this instance.
///
/// Each stream has a bounded buffer. ``publish(_:)`` never waits: an event that does not fit ends
/// that stream (its buffer finishes), so one slow client can never hold up the others or grow
/// without bound; the client reconnects with `Last-Event-ID` and the replay fills what it missed.
/// The hub also remembers, per order with open streams, the newest id it delivered: after a
/// listener gap the relay re-reads the log from there.
public final class StreamHub: Sendable {
    /// A stream's registration: its live events, and the handle to end it.
    public struct Subscription: Sendable {
        public let id: Int
        public let orderID: String
        /// Live events for this order, in id order, from registration on. Ends when the stream is
        /// dropped for overflow, unsubscribed, or the hub closes.
        public let events: AsyncStream<OrderEvent>
    }

    private struct State {
        var streams: [String: [Int: AsyncStream<OrderEvent>.Continuation]] = [:]
        var lastDelivered: [String: Int64] = [:]
        var nextID = 0
        var isClosed = false
    }

    /// Events a stream may hold unread before it is dropped.
    public let bufferSize: Int
    private let state = Mutex(State())

    public init(bufferSize: Int) {
        precondition(bufferSize > 0, "a stream needs room for at least one event")
        self.bufferSize = bufferSize
    }

    /// Registers a stream for an order. Register before reading the log (see
    /// ``OrderStreamStateMachine``): events committed meanwhile then arrive here too.
    public func subscribe(orderID: String) -> Subscription {
        let (events, continuation) = AsyncStream.makeStream(
            of: OrderEvent.self,
            bufferingPolicy: .bufferingOldest(self.bufferSize)
        )
        let id = self.state.withLock { state -> Int? in
            guard !state.isClosed else { return nil }
            defer { state.nextID += 1 }
            state.streams[orderID, default: [:]][state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return Subscription(id: -1, orderID: orderID, events: events)
        }
        continuation.onTermination = { [weak self] _ in self?.remove(orderID: orderID, id: id) }
        return Subscription(id: id, orderID: orderID, events: events)
    }

    /// Ends a stream's registration (its handler is done). Safe to call more than once.
    public func unsubscribe(_ subscription: Subscription) {
        let continuation = self.state.withLock { state in state.streams[subscription.orderID]?[subscription.id] }
        continuation?.finish()
    }

    /// Delivers an order's new events, in id order, to its open streams and returns how many
    /// streams were dropped because their buffer was full. Never waits.
    ///
    /// - Important: Calls for the same order must not overlap (the relay publishes from one task):
    ///   the events are handed out after the lock is released, so two overlapping calls could
    ///   interleave. The stream's ``OrderStreamStateMachine`` would drop what then arrives late,
    ///   but it would be a gap until the next replay.
    @discardableResult
    public func publish(_ events: [OrderEvent]) -> Int {
        guard let orderID = events.first?.orderID else { return 0 }
        precondition(events.allSatisfy { $0.orderID == orderID }, "publish one order's events at a time")
        // Decide under the lock, act outside it: yielding can run termination handlers that lock.
        let streams = self.state.withLock { state -> [AsyncStream<OrderEvent>.Continuation] in
            guard let streams = state.streams[orderID] else { return [] }
            let newest = events.map(\.id).max() ?? 0
            state.lastDelivered[orderID] = max(state.lastDelivered[orderID] ?? 0, newest)
            return Array(streams.values)
        }
        var dropped = 0
        for stream in streams {
            for event in events {
                if case .dropped = stream.yield(event) {
                    stream.finish()
                    dropped += 1
                    break
                }
            }
        }
        return dropped
    }

    /// Every order with open streams, and the newest id delivered to it (0 when none yet): what the
    /// relay re-reads after the listener reports a gap.
    public func watchedOrders() -> [String: Int64] {
        self.state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.streams.keys.map { ($0, state.lastDelivered[$0] ?? 0) })
        }
    }

    /// Open streams on this instance.
    public var openStreams: Int {
        self.state.withLock { $0.streams.values.reduce(0) { $0 + $1.count } }
    }

    /// Ends every stream and refuses new ones (shutdown).
    public func close() {
        let all = self.state.withLock { state in
            state.isClosed = true
            return state.streams.values.flatMap(\.values)
        }
        for stream in all { stream.finish() }
    }

    private func remove(orderID: String, id: Int) {
        self.state.withLock { state in
            state.streams[orderID]?[id] = nil
            if state.streams[orderID]?.isEmpty == true {
                state.streams[orderID] = nil
                state.lastDelivered[orderID] = nil
            }
        }
    }
}
