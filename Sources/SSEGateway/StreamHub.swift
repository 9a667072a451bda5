public import EventLog
import Synchronization

/// Fans live events out to the open streams of each order, on this instance, and admits streams
/// within ``StreamLimits``.
///
/// Each stream's life is a ``StreamStateMachine``; the hub keeps the machines, the indexes (a
/// ``StreamRegistry`` by order and address, a ``TimingWheel`` for heartbeats and ages) and one
/// lock, feeds each machine what happened, and performs the actions it returns: decide under the
/// lock, write without waiting, call back outside it.
///
/// A stream registers (``subscribe(orderID:clientAddress:onOverflow:now:)``), reads where it starts
/// (``startRead(_:cursor:latestEventID:finishEventID:)``), replays the log itself
/// (``replayRead(_:_:)``), then goes live (``replayFinished(_:sink:now:onEnd:)``). From then on the
/// hub writes each new event, keepalive and parting `retry:` straight to the stream's
/// ``StreamSink``: no task of the stream's wakes for them, and the hub never waits on a client
/// (mercure's model). A client whose connection cannot take more is dropped (its `onOverflow`
/// closes the connection) and resumes with Last-Event-ID; the others are not held up.
///
/// Events come from the relay (read from the log, in id order per order) and from this
/// instance's own commits (``CommittedEvents``). The hub also remembers, per order with open
/// streams, the newest id the relay delivered: the relay re-reads the log from there.
public final class StreamHub: Sendable {
    /// A stream's registration. Dropping the last copy of it without going live (its response
    /// was never written) frees its place.
    public struct Subscription: Sendable {
        public let id: Int
        public let orderID: String
        let registration: Registration<StreamHub>
    }

    /// What ``replayFinished(_:sink:now:onEnd:)`` did.
    package enum GoLive: Sendable, Hashable {
        /// The hub writes to the stream from now on, and calls `onEnd` once when it ends.
        case live
        /// The stream ended at once (its `finish` was pending, the server is stopping, the client
        /// was too slow, or it is gone); `onEnd` will not be called.
        case ended(StreamEnd)
    }

    /// What the hub keeps of a stream besides its machine: where it writes, and whom it tells.
    private struct Stream {
        var machine: StreamStateMachine
        let onOverflow: @Sendable () -> Void
        /// Set as it goes live.
        var sink: (any StreamSink)?
        var onEnd: (@Sendable (StreamEnd) -> Void)?
        /// The wheel's slot it is filed under.
        var slot: Int64 = .max
    }

    private struct State {
        var streams: StreamRegistry<Stream>
        var wheel: TimingWheel
        /// The newest id the relay delivered, per order with open streams.
        var lastDelivered: [String: Int64] = [:]

        /// Forgets a stream, and its order's cursor with its last stream.
        mutating func remove(_ id: Int) -> Stream? {
            guard let (stream, orderID) = self.streams.remove(id) else { return nil }
            if let orderID, self.streams.byKey[orderID] == nil { self.lastDelivered[orderID] = nil }
            return stream
        }
    }

    public let limits: StreamLimits
    public let policy: StreamPolicy
    /// The `retry:` written to every live stream when the server stops.
    public let shutdownRetry: Duration
    private let state: Mutex<State>
    private let dropped = Atomic<Int>(0)
    private let spreadsTicks: Bool
    /// Told of every event written to a live stream (commit-to-delivery latency).
    private let onDelivered: @Sendable (OrderEvent) -> Void
    private let writer: any StreamBatchWriter

    public init(
        limits: StreamLimits,
        policy: StreamPolicy,
        shutdownRetry: Duration = .milliseconds(250),
        now: ContinuousClock.Instant = .now,
        spreadsTicks: Bool = true,
        writer: any StreamBatchWriter = OneSinkAtATime(),
        onDelivered: @escaping @Sendable (OrderEvent) -> Void = { _ in }
    ) {
        self.limits = limits
        self.policy = policy
        self.shutdownRetry = shutdownRetry
        self.state = Mutex(State(streams: StreamRegistry(limits: limits), wheel: TimingWheel(epoch: now)))
        self.spreadsTicks = spreadsTicks
        self.onDelivered = onDelivered
        self.writer = writer
    }

    // MARK: A stream's life

    /// Admits and registers a stream. Register before reading the log: events committed meanwhile
    /// are then held for it, and ``replayFinished(_:sink:now:onEnd:)`` writes those the replay missed.
    ///
    /// - Parameters:
    ///   - clientAddress: the address the per-address limit counts.
    ///   - onOverflow: runs (once, outside any lock) if the hub drops the stream because the client
    ///     does not read; it closes the connection.
    ///   - now: when it opened (its maximum age counts from here).
    public func subscribe(
        orderID: String,
        clientAddress: String,
        onOverflow: @escaping @Sendable () -> Void,
        now: ContinuousClock.Instant = .now
    ) throws(StreamRefusal) -> Subscription {
        let stream = Stream(machine: StreamStateMachine(openedAt: now), onOverflow: onOverflow)
        let admitted = self.state.withLock { state in
            Result { () throws(StreamRefusal) in
                try state.streams.admit(key: orderID, address: clientAddress, stream)
            }
        }
        let id = try admitted.get()
        return Subscription(id: id, orderID: orderID, registration: Registration(id: id, owner: self))
    }

    /// The stream's start was read: it resumes after `cursor`, and the order's log held events
    /// through `latestEventID` then (every one of them had committed: an order's events are
    /// appended under its row lock, so they commit in id order).
    ///
    /// - Returns: whether the stream must replay the log (``StreamStateMachine/startRead(cursor:latestEventID:finishEventID:)``).
    package func startRead(
        _ subscription: Subscription,
        cursor: Int64,
        latestEventID: Int64,
        finishEventID: Int64?
    ) -> Bool {
        self.state.withLock { state in
            state.streams.update(subscription.id) {
                $0.machine.startRead(cursor: cursor, latestEventID: latestEventID, finishEventID: finishEventID)
            }
        } == .readLog
    }

    /// A page the stream's replay read from the log: what to write of it. When it holds the
    /// order's `finish`, the stream has ended and the hub has forgotten it.
    package func replayRead(_ subscription: Subscription, _ page: [OrderEvent]) -> StreamStateMachine.ReplayAction {
        self.state.withLock { state in
            guard let action = state.streams.update(subscription.id, { $0.machine.replayRead(page) }) else {
                return .stop(.cancelled)
            }
            if case .writeAndFinish = action { _ = state.remove(subscription.id) }
            return action
        }
    }

    /// The stream has replayed the log: from now on the hub writes to `sink`. The events held
    /// while it replayed, above the last id it wrote, are written first, in id order.
    ///
    /// Those first writes happen under the hub's lock, as a publish's do: a publish for the same
    /// order could otherwise overtake them. Writes only queue bytes on the connection and never wait.
    package func replayFinished(
        _ subscription: Subscription,
        sink: any StreamSink,
        now: ContinuousClock.Instant = .now,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) -> GoLive {
        // Unless the hub was made with `spreadsTicks: false`, a stream's first keepalive comes
        // between half and a whole heartbeat after it goes live.
        let quietSince = self.spreadsTicks ? now - self.policy.heartbeat / 2 * Double.random(in: 0..<1) : now
        let (outcome, overflow, delivered) = self.state.withLock {
            state -> (GoLive, (@Sendable () -> Void)?, [OrderEvent]) in
            let id = subscription.id
            guard let action = state.streams.update(id, { $0.machine.replayFinished(quietSince: quietSince) }) else {
                return (.ended(.cancelled), nil, [])
            }
            switch action {
            case .ended(let end):
                _ = state.remove(id)
                return (.ended(end), nil, [])
            case .writeRetryAndEnd:
                _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
                _ = state.remove(id)
                return (.ended(.shutdown), nil, [])
            case .writeAndFinish(let events):
                let stream = state.remove(id)
                guard sink.send(ServerSentEventEncoder.encode(events)) else {
                    return (.ended(.dropped), stream?.onOverflow, [])
                }
                return (.ended(.finished), nil, events)
            case .goLive(let events):
                if !events.isEmpty, !sink.send(ServerSentEventEncoder.encode(events)) {
                    let stream = state.remove(id)
                    return (.ended(.dropped), stream?.onOverflow, [])
                }
                state.streams.update(id) { stream in
                    stream.sink = sink
                    stream.onEnd = onEnd
                    stream.slot = state.wheel.file(id, dueAt: stream.machine.nextDue(policy: self.policy)!)
                }
                return (.live, nil, events)
            }
        }
        if let overflow { self.countDrop(overflow) }
        for event in delivered { self.onDelivered(event) }
        return outcome
    }

    /// Ends a stream's registration (the client left); a live stream's `onEnd` gets `cancelled`.
    /// Safe to call more than once.
    public func unsubscribe(_ subscription: Subscription) {
        self.cancel(id: subscription.id)
    }

    /// Ends one stream with a short `retry:` (the server is stopping); a replaying one ends as
    /// soon as it goes live.
    public func end(_ subscription: Subscription) {
        let ending = self.state.withLock { state -> Stream? in
            guard let action = state.streams.update(subscription.id, { $0.machine.shutdownRequested() }),
                action == .writeRetryAndEnd
            else { return nil }
            return state.remove(subscription.id)
        }
        guard let ending, let sink = ending.sink else { return }
        _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
        ending.onEnd?(.shutdown)
    }

    // MARK: Delivery

    /// Delivers an order's new events, in id order, to its open streams: written to the live ones,
    /// held for the replaying ones. Never waits. What the relay calls with what it read from the log.
    public func publish(_ events: [OrderEvent], now: ContinuousClock.Instant = .now) {
        self.deliver(events, following: nil, now: now)
    }

    /// Delivers what a transaction of this instance committed to the live streams that have had
    /// everything up to its predecessor, and to no other: those get it without waiting for the
    /// NOTIFY to come back and the relay to read the log. Streams still replaying, or behind or
    /// ahead of the predecessor, are left to the relay, which publishes the same events from the
    /// log; each stream writes an id once, whichever comes first.
    public func publish(_ committed: CommittedEvents, now: ContinuousClock.Instant = .now) {
        self.deliver(committed.events, following: committed.predecessor, now: now)
    }

    /// Writes happen under the lock (they only queue bytes and never wait): a stream's events then
    /// go out in the order its state changed, however the relay's and the commits' calls overlap.
    private func deliver(_ events: [OrderEvent], following predecessor: Int64?, now: ContinuousClock.Instant) {
        guard let orderID = events.first?.orderID else { return }
        precondition(events.allSatisfy { $0.orderID == orderID }, "publish one order's events at a time")
        // Most commits are for orders with no stream here: nothing to encode. (A stream that
        // registers after this look reads the log afterwards, which holds these events.)
        guard self.state.withLock({ $0.streams.byKey[orderID] != nil }) else { return }
        let events = events.sorted { $0.id < $1.id }
        // Each event is encoded once, whatever the number of streams.
        let encoded = events.map { ServerSentEventEncoder.encode($0) }
        var writes: [(id: Int, events: ArraySlice<OrderEvent>)] = []
        var refused: Set<Int> = []
        var finished: [@Sendable (StreamEnd) -> Void] = []
        var overflowed: [@Sendable () -> Void] = []
        self.state.withLock { state in
            guard let ids = state.streams.byKey[orderID] else { return }
            if predecessor == nil {
                state.lastDelivered[orderID] = max(state.lastDelivered[orderID] ?? 0, events.last!.id)
            }
            var texts: [(sink: any StreamSink, text: String)] = []
            for id in ids {
                let published = state.streams.update(id) {
                    ($0.machine.eventsPublished(events, following: predecessor, now: now, policy: self.policy), $0.sink)
                }
                guard let (action, sink) = published else { continue }
                switch action {
                case .none:
                    continue
                case .drop:
                    if let stream = state.remove(id) { overflowed.append(stream.onOverflow) }
                case .write(let range):
                    writes.append((id, events[range]))
                    texts.append((sink!, encoded[range].joined()))
                case .writeAndFinish(let range):
                    let stream = state.remove(id)!
                    writes.append((id, events[range]))
                    texts.append((stream.sink!, encoded[range].joined()))
                    if let onEnd = stream.onEnd { finished.append(onEnd) }
                }
            }
            if !texts.isEmpty { refused = self.writer.send(texts) }
        }
        for (index, write) in writes.enumerated() {
            if refused.contains(index) {
                self.drop(id: write.id)
            } else {
                for event in write.events { self.onDelivered(event) }
            }
        }
        for onEnd in finished { onEnd(.finished) }
        for overflow in overflowed { self.countDrop(overflow) }
    }

    /// Writes a `: keepalive` to each live stream the hub wrote nothing to for a heartbeat
    /// interval, and ends those that reached their maximum age. Never waits. Call it a few times a
    /// second: a keepalive is then at most that late. It looks only at the streams the wheel says
    /// may be due.
    public func tick(now: ContinuousClock.Instant = .now) {
        var keepalives: [(id: Int, sink: any StreamSink)] = []
        var expired: [@Sendable (StreamEnd) -> Void] = []
        self.state.withLock { state in
            for (slot, ids) in state.wheel.advance(to: now) {
                for id in ids {
                    let due = state.streams.update(id) {
                        stream -> (StreamStateMachine.HeartbeatAction, any StreamSink)? in
                        // A stream refiled since is skipped here (one gone is not found at all).
                        guard stream.slot == slot, let sink = stream.sink else { return nil }
                        let action = stream.machine.heartbeatDue(now: now, policy: self.policy)
                        if action != .expire {
                            stream.slot = state.wheel.file(id, dueAt: stream.machine.nextDue(policy: self.policy)!)
                        }
                        return (action, sink)
                    }
                    switch due ?? nil {
                    case (.expire, _)?:
                        if let onEnd = state.remove(id)?.onEnd { expired.append(onEnd) }
                    case (.keepalive, let sink)?:
                        keepalives.append((id, sink))
                    case (.none, _)?, nil:
                        break
                    }
                }
            }
        }
        let keepalive = ServerSentEventEncoder.comment("keepalive")
        let refused = self.writer.send(keepalives.map { ($0.sink, keepalive) })
        for index in refused { self.drop(id: keepalives[index].id) }
        for onEnd in expired { onEnd(.expired) }
    }

    // MARK: State

    /// The newest id delivered to each of `orderIDs` that has open streams (0 when nothing was yet):
    /// where the relay reads an announced order's log from.
    public func cursors(for orderIDs: some Sequence<String>) -> [String: Int64] {
        self.state.withLock { state in
            var cursors: [String: Int64] = [:]
            for id in orderIDs where state.streams.byKey[id] != nil { cursors[id] = state.lastDelivered[id] ?? 0 }
            return cursors
        }
    }

    /// For each of `orderIDs` with live streams, the lowest last id written among them: an event
    /// above it is one some stream of the order has not had. (Streams still replaying read the log
    /// themselves.) What the relay's recovery compares the log with.
    ///
    /// The lock is taken for ``positionsPerLock`` orders at a time: the relay asks for thousands
    /// every few seconds, and deliveries write under the same lock (BENCHMARKS.md, item 19). A
    /// stream's last id only grows, so positions read a little apart are still each a true lower
    /// bound.
    public func positions(for orderIDs: some Sequence<String>) -> [String: Int64] {
        var positions: [String: Int64] = [:]
        var batch: [String] = []
        batch.reserveCapacity(Self.positionsPerLock)
        func look() {
            self.state.withLock { state in
                for orderID in batch {
                    for id in state.streams.byKey[orderID] ?? [] {
                        guard let lastSent = state.streams[id]?.machine.lastSent else { continue }
                        positions[orderID] = min(positions[orderID] ?? .max, lastSent)
                    }
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        for orderID in orderIDs {
            batch.append(orderID)
            if batch.count == Self.positionsPerLock { look() }
        }
        look()
        return positions
    }

    /// Orders ``positions(for:)`` looks up per hold of the lock.
    static let positionsPerLock = 256

    /// Every order with open streams, and the newest id delivered to it: what the relay re-reads
    /// after a listener gap and periodically.
    public func watchedOrders() -> [String: Int64] {
        self.state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.streams.byKey.keys.map { ($0, state.lastDelivered[$0] ?? 0) })
        }
    }

    /// Open streams on this instance.
    public var openStreams: Int { self.state.withLock { $0.streams.count } }

    /// Streams dropped so far because they did not read.
    public var droppedStreams: Int { self.dropped.load(ordering: .relaxed) }

    /// Ends every stream (live ones get `cancelled`) and refuses new ones.
    public func close() {
        let streams = self.state.withLock { state in
            state.lastDelivered = [:]
            return state.streams.close()
        }
        for stream in streams { stream.onEnd?(.cancelled) }
    }

    // MARK: Internals

    /// Drops a stream whose client does not read: closes its connection, ends it.
    private func drop(id: Int) {
        let dropped = self.state.withLock { state -> Stream? in
            guard state.streams.update(id, { $0.machine.writeRefused() }) != nil else { return nil }
            return state.remove(id)
        }
        guard let dropped else { return }
        self.countDrop(dropped.onOverflow)
        dropped.onEnd?(.dropped)
    }

    private func countDrop(_ overflow: @Sendable () -> Void) {
        self.dropped.add(1, ordering: .relaxed)
        overflow()
    }

    fileprivate func cancel(id: Int) {
        let cancelled = self.state.withLock { state -> Stream? in
            guard state.streams.update(id, { $0.machine.cancelled() }) != nil else { return nil }
            return state.remove(id)
        }
        cancelled?.onEnd?(.cancelled)
    }
}

extension StreamHub: RegistrationOwner {
    func forget(id: Int) { self.cancel(id: id) }
}
