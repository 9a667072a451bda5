public import OrderStore
import Synchronization

/// What a stream's buffer carries.
public enum StreamSignal: Sendable, Hashable {
    case event(OrderEvent)
    /// The stream has had nothing from the hub for a heartbeat interval, or reached its maximum
    /// age: time for a keepalive, or to end.
    case tick
    /// End the stream now, with a short `retry:` (the server is stopping).
    case end
}

/// How many streams the hub admits.
public struct StreamLimits: Sendable, Hashable {
    public var total: Int
    public var perAddress: Int
    public var perOrder: Int

    public init(total: Int, perAddress: Int, perOrder: Int) {
        self.total = total
        self.perAddress = perAddress
        self.perOrder = perOrder
    }
}

/// Why a stream was not admitted.
public enum StreamRefusal: Error, Sendable, Hashable {
    /// The instance holds as many streams as it may (another instance may have room).
    case instanceFull
    case tooManyFromAddress
    case tooManyForOrder
    /// The hub is closed (shutdown).
    case closed
}

/// Fans live events out to the open streams of each order, on this instance, and admits streams
/// within ``StreamLimits``.
///
/// Each stream has a bounded buffer. The hub never waits on a stream: a signal that does not fit
/// ends that stream (its buffer finishes and its `onOverflow` runs, which closes the connection),
/// so a client that does not read cannot hold up the others or grow without bound; it reconnects
/// with `Last-Event-ID` and its replay fills what it missed.
///
/// The hub also remembers, per order with open streams, the newest id it delivered: after a
/// listener gap the relay re-reads the log from there.
public final class StreamHub: Sendable {
    /// A stream's registration: its signals, and the handle to end it.
    public struct Subscription: Sendable {
        public let id: Int
        public let orderID: String
        /// Live events for this order, in id order, from registration on, with ticks between them.
        /// Ends when the stream is dropped for overflow, unsubscribed or the hub closes.
        public let signals: AsyncStream<StreamSignal>
    }

    private struct Stream {
        let orderID: String
        let continuation: AsyncStream<StreamSignal>.Continuation
        let address: String
        let onOverflow: @Sendable () -> Void
        let openedAt: ContinuousClock.Instant
        /// When the hub last handed it anything (an event or a tick).
        var quietSince: ContinuousClock.Instant
        /// The wheel's slot it is filed under: the second it may next be due.
        var slot: Int64
    }

    private struct State {
        /// By subscription id.
        var streams: [Int: Stream] = [:]
        /// The subscription ids of each order with open streams.
        var byOrder: [String: [Int]] = [:]
        var streamsPerAddress: [String: Int] = [:]
        var lastDelivered: [String: Int64] = [:]
        /// Subscription ids by the second they may next be due: a tick looks only at the slots
        /// that have come, not at every stream. An id whose stream moved to a later slot, or is
        /// gone, is skipped there.
        var wheel: [Int64: [Int]] = [:]
        /// The last slot a tick emptied.
        var lastSlot: Int64 = 0
        var nextID = 0
        var isClosed = false
    }

    /// Signals a stream may hold unread before it is dropped.
    public let bufferSize: Int
    public let limits: StreamLimits
    /// A stream the hub has handed nothing for this long gets a tick (its keepalive is due).
    public let heartbeat: Duration
    /// A stream this old gets a tick (it is to end).
    public let maximumAge: Duration
    private let state = Mutex(State())
    private let dropped = Atomic<Int>(0)
    /// Slot 0 of the wheel.
    private let epoch: ContinuousClock.Instant
    private let spreadsTicks: Bool

    public init(
        bufferSize: Int,
        limits: StreamLimits,
        heartbeat: Duration = .seconds(15),
        maximumAge: Duration = .seconds(3600),
        now: ContinuousClock.Instant = .now,
        spreadsTicks: Bool = true
    ) {
        precondition(bufferSize > 0, "a stream needs room for at least one signal")
        self.bufferSize = bufferSize
        self.limits = limits
        self.heartbeat = heartbeat
        self.maximumAge = maximumAge
        self.epoch = now
        self.spreadsTicks = spreadsTicks
    }

    /// Admits and registers a stream. Register before reading the log: events committed meanwhile
    /// then arrive here too (``OrderStreamStateMachine`` drops the ones the replay already sent).
    ///
    /// - Parameters:
    ///   - clientAddress: the address the per-address limit counts.
    ///   - onOverflow: runs (once, outside any lock) if the hub drops the stream for a full buffer;
    ///     it should close the connection, since the stream's handler may be stuck in a write.
    ///   - now: when it opened; unless the hub was made with `spreadsTicks: false`, its first tick
    ///     comes between half and a whole heartbeat later.
    public func subscribe(
        orderID: String,
        clientAddress: String,
        onOverflow: @escaping @Sendable () -> Void,
        now: ContinuousClock.Instant = .now
    ) throws(StreamRefusal) -> Subscription {
        let (signals, continuation) = AsyncStream.makeStream(
            of: StreamSignal.self,
            bufferingPolicy: .bufferingOldest(self.bufferSize)
        )
        // Spread over the first interval, so that streams opened together do not tick together.
        let quietSince = self.spreadsTicks ? now - self.heartbeat / 2 * Double.random(in: 0..<1) : now
        let admitted = self.state.withLock { state -> Result<Int, StreamRefusal> in
            if state.isClosed { return .failure(.closed) }
            if state.streams.count >= self.limits.total { return .failure(.instanceFull) }
            if state.streamsPerAddress[clientAddress, default: 0] >= self.limits.perAddress {
                return .failure(.tooManyFromAddress)
            }
            if state.byOrder[orderID, default: []].count >= self.limits.perOrder { return .failure(.tooManyForOrder) }
            let id = state.nextID
            state.nextID += 1
            var stream = Stream(
                orderID: orderID,
                continuation: continuation,
                address: clientAddress,
                onOverflow: onOverflow,
                openedAt: now,
                quietSince: quietSince,
                slot: 0
            )
            stream.slot = self.file(id, dueAt: self.dueAt(stream), after: state.lastSlot, in: &state)
            state.streams[id] = stream
            state.byOrder[orderID, default: []].append(id)
            state.streamsPerAddress[clientAddress, default: 0] += 1
            return .success(id)
        }
        let id = try admitted.get()
        continuation.onTermination = { [weak self] _ in self?.remove(id: id) }
        return Subscription(id: id, orderID: orderID, signals: signals)
    }

    /// Ends a stream's registration. Safe to call more than once.
    public func unsubscribe(_ subscription: Subscription) {
        self.state.withLock { $0.streams[subscription.id]?.continuation }?.finish()
    }

    /// Asks one stream to end with a short `retry:` (the server is stopping). A stream whose buffer
    /// is full is dropped instead.
    public func end(_ subscription: Subscription) {
        guard let stream = self.state.withLock({ $0.streams[subscription.id] }) else { return }
        self.offer([.end], to: stream)
    }

    /// Delivers an order's new events, in id order, to its open streams. Never waits.
    ///
    /// - Important: Calls for the same order must not overlap (the relay publishes from one task):
    ///   the events are handed out after the lock is released, so two overlapping calls could
    ///   interleave, and a stream would drop the late ones as already sent.
    public func publish(_ events: [OrderEvent], now: ContinuousClock.Instant = .now) {
        guard let orderID = events.first?.orderID else { return }
        precondition(events.allSatisfy { $0.orderID == orderID }, "publish one order's events at a time")
        // Decide under the lock, act outside it: yielding can run termination handlers that lock.
        let streams = self.state.withLock { state -> [Stream] in
            guard let ids = state.byOrder[orderID] else { return [] }
            let newest = events.map(\.id).max() ?? 0
            state.lastDelivered[orderID] = max(state.lastDelivered[orderID] ?? 0, newest)
            // Its slot in the wheel stays: when it comes, the stream is filed later again.
            for id in ids { state.streams[id]?.quietSince = now }
            return ids.compactMap { state.streams[$0] }
        }
        let signals = events.map(StreamSignal.event)
        for stream in streams { self.offer(signals, to: stream) }
    }

    /// Sends a ``StreamSignal/tick`` to each stream that had nothing from the hub for a heartbeat
    /// interval, or reached its maximum age, and to no other. Never waits. Call it a few times a
    /// second: a keepalive is then at most that late.
    ///
    /// It looks only at the wheel's slots that have come (about heartbeat⁻¹ of the streams each
    /// second), never at every stream: with 10,000 streams a whole pass under the lock was
    /// measured at 5–15 ms, ten times a second, holding up every delivery meanwhile.
    public func tick(now: ContinuousClock.Instant = .now) {
        let current = self.slot(of: now)
        let due = self.state.withLock { state -> [Stream] in
            var due: [Stream] = []
            while state.lastSlot < current {
                state.lastSlot += 1
                guard let ids = state.wheel.removeValue(forKey: state.lastSlot) else { continue }
                for id in ids {
                    guard var stream = state.streams[id], stream.slot == state.lastSlot else { continue }
                    if now - stream.quietSince >= self.heartbeat || now - stream.openedAt >= self.maximumAge {
                        stream.quietSince = now
                        due.append(stream)
                    }
                    // After this tick's slots, or an old stream would be ticked twice in one call.
                    stream.slot = self.file(id, dueAt: self.dueAt(stream), after: current, in: &state)
                    state.streams[id] = stream
                }
            }
            return due
        }
        for stream in due { self.offer([.tick], to: stream) }
    }

    /// The newest id delivered to each of `orderIDs` that has open streams (0 when nothing was yet):
    /// where the relay reads an announced order's log from.
    public func cursors(for orderIDs: some Sequence<String>) -> [String: Int64] {
        self.state.withLock { state in
            var cursors: [String: Int64] = [:]
            for id in orderIDs where state.byOrder[id] != nil { cursors[id] = state.lastDelivered[id] ?? 0 }
            return cursors
        }
    }

    /// Every order with open streams, and the newest id delivered to it: what the relay re-reads
    /// after a listener gap and periodically.
    public func watchedOrders() -> [String: Int64] {
        self.state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.byOrder.keys.map { ($0, state.lastDelivered[$0] ?? 0) })
        }
    }

    /// Open streams on this instance.
    public var openStreams: Int { self.state.withLock { $0.streams.count } }

    /// Streams dropped so far because they did not read.
    public var droppedStreams: Int { self.dropped.load(ordering: .relaxed) }

    /// Ends every stream and refuses new ones.
    public func close() {
        let all = self.state.withLock { state in
            state.isClosed = true
            return Array(state.streams.values)
        }
        for stream in all { stream.continuation.finish() }
    }

    private func offer(_ signals: [StreamSignal], to stream: Stream) {
        for signal in signals {
            guard case .dropped = stream.continuation.yield(signal) else { continue }
            stream.continuation.finish()
            self.dropped.add(1, ordering: .relaxed)
            stream.onOverflow()
            return
        }
    }

    /// When a stream may next need a tick: a heartbeat after the hub last handed it anything, or
    /// its maximum age, whichever comes first.
    private func dueAt(_ stream: Stream) -> ContinuousClock.Instant {
        min(stream.quietSince + self.heartbeat, stream.openedAt + self.maximumAge)
    }

    /// Files a stream in the wheel at the first slot not before `instant`, and after `earliest`;
    /// returns the slot.
    private func file(_ id: Int, dueAt instant: ContinuousClock.Instant, after earliest: Int64, in state: inout State)
        -> Int64
    {
        let slot = max(self.slot(of: instant) + 1, earliest + 1)
        state.wheel[slot, default: []].append(id)
        return slot
    }

    /// Whole seconds since the epoch, rounded down.
    private func slot(of instant: ContinuousClock.Instant) -> Int64 {
        Int64(((instant - self.epoch) / .seconds(1)).rounded(.down))
    }

    private func remove(id: Int) {
        self.state.withLock { state in
            guard let stream = state.streams.removeValue(forKey: id) else { return }
            state.streamsPerAddress[stream.address, default: 1] -= 1
            if state.streamsPerAddress[stream.address] == 0 { state.streamsPerAddress[stream.address] = nil }
            state.byOrder[stream.orderID]?.removeAll { $0 == id }
            if state.byOrder[stream.orderID]?.isEmpty == true {
                state.byOrder[stream.orderID] = nil
                state.lastDelivered[stream.orderID] = nil
            }
        }
    }
}
