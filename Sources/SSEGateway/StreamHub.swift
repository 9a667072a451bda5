public import OrderStore
import Synchronization

/// Where a live stream's bytes go: the hub writes to it directly and never waits on it.
public protocol StreamSink: Sendable {
    /// Queues `text` for the client without waiting. Returns false when the client is too far
    /// behind (its connection's buffers are full): the hub then drops the stream.
    func send(_ text: String) -> Bool
}

/// Hands many writes to their sinks at once: an implementation can group them (one hop onto each
/// event loop instead of one per stream).
public protocol StreamBatchWriter: Sendable {
    /// Queues each text on its sink; returns the positions of the writes refused (known at once, as
    /// ``StreamSink/send(_:)``'s).
    func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int>

    /// The broadcast group `sink` belongs to for as long as it lives: a caller that keeps its sinks
    /// sorted by group hands each group to ``broadcast(_:to:paced:refused:)`` whole.
    func group(of sink: any StreamSink) -> ObjectIdentifier?

    /// Queues `text` on every sink of one group (sinks for which ``group(of:)`` is the same),
    /// possibly after returning; `refused` is then called once, from any thread, with the positions
    /// of the sinks that refused, if any did. A `paced` broadcast (an event without an id, whose
    /// order against later events does not matter) may be spread out, so that what is published
    /// after it need not wait for all of it.
    func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    )
}

extension StreamBatchWriter {
    /// One group for every sink.
    public func group(of sink: any StreamSink) -> ObjectIdentifier? { nil }

    /// Writes one sink at a time, before returning.
    public func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    ) {
        let refusals = sinks.indices.filter { !sinks[$0].send(text) }
        if !refusals.isEmpty { refused(refusals) }
    }
}

/// Writes one sink at a time.
public struct OneSinkAtATime: StreamBatchWriter {
    public init() {}

    public func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int> {
        Set(writes.indices.filter { !writes[$0].sink.send(writes[$0].text) })
    }
}

/// Why a live stream ended.
public enum StreamEnd: Sendable, Hashable {
    /// The order's `finish` was written.
    case finished
    /// The stream reached its maximum age; the client resumes with Last-Event-ID.
    case expired
    /// The server is stopping; a short `retry:` was written.
    case shutdown
    /// The client did not read; its connection was closed.
    case dropped
    /// The client left, or the stream was unsubscribed.
    case cancelled
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
/// A stream registers (``subscribe(orderID:clientAddress:onOverflow:now:)``), replays the log
/// itself, then goes live (``goLive(_:cursor:sink:now:onEnd:)``). While it replays, the hub holds
/// the events published for its order (at most `bufferSize`); from then on it writes each new
/// event, keepalive and parting `retry:` straight to the stream's ``StreamSink``: no task of the
/// stream's wakes for them, and the hub never waits on a client (mercure's model). A client whose
/// connection cannot take more is dropped (its `onOverflow` closes the connection) and resumes
/// with Last-Event-ID; the others are not held up.
///
/// Each live stream gets every event once, in id order: the hub writes only ids above the last it
/// wrote there, and writes under its lock. Events come from the relay (read from the log, in id
/// order per order) and from this instance's own commits, which go only to streams that have had
/// everything before them (``CommittedEvents``).
///
/// The hub also remembers, per order with open streams, the newest id the relay delivered: the
/// relay re-reads the log from there.
public final class StreamHub: Sendable {
    /// A stream's registration. Dropping the last copy of it without going live (its response
    /// was never written) frees its place.
    public struct Subscription: Sendable {
        public let id: Int
        public let orderID: String
        let registration: Registration<StreamHub>
    }

    /// What ``goLive(_:cursor:sink:now:onEnd:)`` did.
    public enum GoLive: Sendable, Hashable {
        /// The hub writes to the stream from now on, and calls `onEnd` once when it ends.
        case live
        /// The stream ended at once (its `finish` was pending, the server is stopping, the client
        /// was too slow, or it is gone); `onEnd` will not be called.
        case ended(StreamEnd)
    }

    private enum Phase {
        /// The stream is replaying the log; events published meanwhile above `covered` (what its
        /// replay reads itself, ``replayCovers(_:through:)``; `nil` until that is known) wait here.
        /// `letGo`: more came before `covered` was known than the buffer holds, and was let go.
        case replaying(pending: [OrderEvent], covered: Int64?, letGo: Bool)
        case live(sink: any StreamSink, lastSent: Int64, onEnd: @Sendable (StreamEnd) -> Void)
    }

    private struct Stream {
        let orderID: String
        let address: String
        let onOverflow: @Sendable () -> Void
        let openedAt: ContinuousClock.Instant
        var phase: Phase
        /// The server is stopping: end it as soon as it goes live.
        var endRequested = false
        /// When the hub last wrote to it (an event or a keepalive).
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

    /// Events a replaying stream may have waiting before it is dropped.
    public let bufferSize: Int
    public let limits: StreamLimits
    /// A live stream the hub wrote nothing to for this long gets a `: keepalive` comment.
    public let heartbeat: Duration
    /// A live stream this old is ended (the client resumes with Last-Event-ID).
    public let maximumAge: Duration
    /// The `retry:` written to every live stream when the server stops.
    public let shutdownRetry: Duration
    private let state = Mutex(State())
    private let dropped = Atomic<Int>(0)
    /// Slot 0 of the wheel.
    private let epoch: ContinuousClock.Instant
    private let spreadsTicks: Bool
    /// Told of every event written to a live stream (commit-to-delivery latency).
    private let onDelivered: @Sendable (OrderEvent) -> Void
    private let writer: any StreamBatchWriter

    public init(
        bufferSize: Int,
        limits: StreamLimits,
        heartbeat: Duration = .seconds(15),
        maximumAge: Duration = .seconds(3600),
        shutdownRetry: Duration = .milliseconds(250),
        now: ContinuousClock.Instant = .now,
        spreadsTicks: Bool = true,
        writer: any StreamBatchWriter = OneSinkAtATime(),
        onDelivered: @escaping @Sendable (OrderEvent) -> Void = { _ in }
    ) {
        precondition(bufferSize > 0, "a stream needs room for at least one event")
        self.bufferSize = bufferSize
        self.limits = limits
        self.heartbeat = heartbeat
        self.maximumAge = maximumAge
        self.shutdownRetry = shutdownRetry
        self.epoch = now
        self.spreadsTicks = spreadsTicks
        self.onDelivered = onDelivered
        self.writer = writer
    }

    // MARK: Registration

    /// Admits and registers a stream. Register before reading the log: events committed meanwhile
    /// are then held for it, and ``goLive(_:cursor:sink:now:onEnd:)`` writes those the replay missed.
    ///
    /// - Parameters:
    ///   - clientAddress: the address the per-address limit counts.
    ///   - onOverflow: runs (once, outside any lock) if the hub drops the stream because the client
    ///     does not read; it closes the connection.
    ///   - now: when it opened; unless the hub was made with `spreadsTicks: false`, its first
    ///     keepalive comes between half and a whole heartbeat after it goes live.
    public func subscribe(
        orderID: String,
        clientAddress: String,
        onOverflow: @escaping @Sendable () -> Void,
        now: ContinuousClock.Instant = .now
    ) throws(StreamRefusal) -> Subscription {
        let admitted = self.state.withLock { state -> Result<Int, StreamRefusal> in
            if state.isClosed { return .failure(.closed) }
            if state.streams.count >= self.limits.total { return .failure(.instanceFull) }
            if state.streamsPerAddress[clientAddress, default: 0] >= self.limits.perAddress {
                return .failure(.tooManyFromAddress)
            }
            if state.byOrder[orderID, default: []].count >= self.limits.perOrder { return .failure(.tooManyForOrder) }
            let id = state.nextID
            state.nextID += 1
            state.streams[id] = Stream(
                orderID: orderID,
                address: clientAddress,
                onOverflow: onOverflow,
                openedAt: now,
                phase: .replaying(pending: [], covered: nil, letGo: false),
                quietSince: now,
                slot: .max
            )
            state.byOrder[orderID, default: []].append(id)
            state.streamsPerAddress[clientAddress, default: 0] += 1
            return .success(id)
        }
        let id = try admitted.get()
        return Subscription(id: id, orderID: orderID, registration: Registration(id: id, owner: self))
    }

    /// The stream's replay reads the order's log through `latestEventID`, its newest id when the
    /// stream's start was read: every event up to it had committed then (an order's events are
    /// appended under its row lock, so they commit in id order). Events up to it are no longer
    /// held for the stream. Otherwise the relay's first read of an order that had no stream here,
    /// which starts at the beginning of its log, would fill the buffer of a stream that never
    /// needed those events, and drop it.
    ///
    /// Until this is known, what overflows the buffer is let go instead (the stream is not
    /// dropped for it): everything published so far has committed, so reading the log after
    /// this call finds it.
    ///
    /// - Returns: whether events were let go: the stream must then read the log itself even if
    ///   its start said there was nothing to read.
    public func replayCovers(_ subscription: Subscription, through latestEventID: Int64) -> Bool {
        self.state.withLock { state in
            guard var stream = state.streams[subscription.id], case .replaying(var pending, _, let letGo) = stream.phase
            else { return false }
            pending.removeAll { $0.id <= latestEventID }
            stream.phase = .replaying(pending: pending, covered: latestEventID, letGo: letGo)
            state.streams[subscription.id] = stream
            return letGo
        }
    }

    /// The stream has replayed the log up to `cursor` (its last id written): from now on the hub
    /// writes to `sink`. The events held while it replayed that are above `cursor` are written
    /// first, in id order.
    ///
    /// Those first writes happen under the hub's lock, as a publish's do: a publish for the same
    /// order could otherwise overtake them. Writes only queue bytes on the connection and never wait.
    public func goLive(
        _ subscription: Subscription,
        cursor: Int64,
        sink: any StreamSink,
        now: ContinuousClock.Instant = .now,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) -> GoLive {
        let (outcome, overflow, delivered) = self.state.withLock {
            state -> (GoLive, (@Sendable () -> Void)?, [OrderEvent]) in
            guard var stream = state.streams[subscription.id], case .replaying(let pending, _, _) = stream.phase else {
                return (.ended(.cancelled), nil, [])
            }
            if stream.endRequested {
                _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
                self.removeLocked(subscription.id, from: &state)
                return (.ended(.shutdown), nil, [])
            }
            var lastSent = cursor
            var text = ""
            var written: [OrderEvent] = []
            for event in pending.sorted(by: { $0.id < $1.id }) where event.id > lastSent {
                text += Self.encode(event)
                lastSent = event.id
                written.append(event)
                if event.isFinish { break }
            }
            if !text.isEmpty, !sink.send(text) {
                self.removeLocked(subscription.id, from: &state)
                return (.ended(.dropped), stream.onOverflow, [])
            }
            if written.last?.isFinish == true {
                self.removeLocked(subscription.id, from: &state)
                return (.ended(.finished), nil, written)
            }
            stream.phase = .live(sink: sink, lastSent: lastSent, onEnd: onEnd)
            stream.quietSince = self.spreadsTicks ? now - self.heartbeat / 2 * Double.random(in: 0..<1) : now
            stream.slot = self.file(subscription.id, dueAt: self.dueAt(stream), after: state.lastSlot, in: &state)
            state.streams[subscription.id] = stream
            return (.live, nil, written)
        }
        if let overflow { self.countDrop(overflow) }
        for event in delivered { self.onDelivered(event) }
        return outcome
    }

    /// Ends a stream's registration (the client left); a live stream's `onEnd` gets `cancelled`.
    /// Safe to call more than once.
    public func unsubscribe(_ subscription: Subscription) {
        self.remove(id: subscription.id, reason: .cancelled)
    }

    /// Ends one stream with a short `retry:` (the server is stopping); a replaying one ends as
    /// soon as it goes live.
    public func end(_ subscription: Subscription) {
        let ending = self.state.withLock { state -> (any StreamSink, @Sendable (StreamEnd) -> Void)? in
            guard var stream = state.streams[subscription.id] else { return nil }
            guard case .live(let sink, _, let onEnd) = stream.phase else {
                stream.endRequested = true
                state.streams[subscription.id] = stream
                return nil
            }
            self.removeLocked(subscription.id, from: &state)
            return (sink, onEnd)
        }
        guard let (sink, onEnd) = ending else { return }
        _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
        onEnd(.shutdown)
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
        guard self.state.withLock({ $0.byOrder[orderID] != nil }) else { return }
        let events = events.sorted { $0.id < $1.id }
        // Each event is encoded once, whatever the number of streams.
        let encoded = events.map(Self.encode)
        var writes: [(id: Int, events: ArraySlice<OrderEvent>)] = []
        var refused: Set<Int> = []
        var ended: [@Sendable (StreamEnd) -> Void] = []
        var overflowed: [@Sendable () -> Void] = []
        self.state.withLock { state in
            guard let ids = state.byOrder[orderID] else { return }
            if predecessor == nil {
                state.lastDelivered[orderID] = max(state.lastDelivered[orderID] ?? 0, events.last!.id)
            }
            var texts: [(sink: any StreamSink, text: String)] = []
            for id in ids {
                guard var stream = state.streams[id] else { continue }
                switch stream.phase {
                case .replaying(var pending, let covered, var letGo):
                    let floor = covered ?? 0
                    guard predecessor == nil, events.last!.id > floor else { continue }
                    pending += events.drop(while: { $0.id <= floor })
                    if pending.count > self.bufferSize {
                        guard covered == nil else {
                            self.removeLocked(id, from: &state)
                            overflowed.append(stream.onOverflow)
                            continue
                        }
                        (pending, letGo) = ([], true)  // ``replayCovers(_:through:)`` has it read the log
                    }
                    stream.phase = .replaying(pending: pending, covered: covered, letGo: letGo)
                    state.streams[id] = stream
                case .live(let sink, let lastSent, let onEnd):
                    if let predecessor, lastSent != predecessor { continue }
                    guard let first = events.firstIndex(where: { $0.id > lastSent }) else { continue }
                    let end = events[first...].firstIndex(where: \.isFinish).map { $0 + 1 } ?? events.endIndex
                    writes.append((id, events[first..<end]))
                    texts.append((sink, encoded[first..<end].joined()))
                    if events[end - 1].isFinish {
                        self.removeLocked(id, from: &state)
                        ended.append(onEnd)
                    } else {
                        stream.phase = .live(sink: sink, lastSent: events[end - 1].id, onEnd: onEnd)
                        stream.quietSince = now
                        state.streams[id] = stream
                    }
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
        for onEnd in ended { onEnd(.finished) }
        for overflow in overflowed { self.countDrop(overflow) }
    }

    /// Writes a `: keepalive` to each live stream the hub wrote nothing to for a heartbeat
    /// interval, and ends those that reached their maximum age. Never waits. Call it a few times a
    /// second: a keepalive is then at most that late.
    ///
    /// It looks only at the wheel's slots that have come (about heartbeat⁻¹ of the streams each
    /// second), never at every stream: with 10,000 streams a whole pass under the lock was
    /// measured at 5–15 ms, ten times a second, holding up every delivery meanwhile.
    public func tick(now: ContinuousClock.Instant = .now) {
        let current = self.slot(of: now)
        var keepalives: [(id: Int, sink: any StreamSink)] = []
        var expired: [@Sendable (StreamEnd) -> Void] = []
        self.state.withLock { state in
            while state.lastSlot < current {
                state.lastSlot += 1
                guard let ids = state.wheel.removeValue(forKey: state.lastSlot) else { continue }
                for id in ids {
                    guard var stream = state.streams[id], stream.slot == state.lastSlot,
                        case .live(let sink, _, let onEnd) = stream.phase
                    else { continue }
                    if now - stream.openedAt >= self.maximumAge {
                        self.removeLocked(id, from: &state)
                        expired.append(onEnd)
                        continue
                    }
                    if now - stream.quietSince >= self.heartbeat {
                        stream.quietSince = now
                        keepalives.append((id, sink))
                    }
                    // After this tick's slots, or an old stream would be handled twice in one call.
                    stream.slot = self.file(id, dueAt: self.dueAt(stream), after: current, in: &state)
                    state.streams[id] = stream
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
            for id in orderIDs where state.byOrder[id] != nil { cursors[id] = state.lastDelivered[id] ?? 0 }
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
                    for id in state.byOrder[orderID] ?? [] {
                        guard case .live(_, let lastSent, _) = state.streams[id]?.phase else { continue }
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
            Dictionary(uniqueKeysWithValues: state.byOrder.keys.map { ($0, state.lastDelivered[$0] ?? 0) })
        }
    }

    /// Open streams on this instance.
    public var openStreams: Int { self.state.withLock { $0.streams.count } }

    /// Streams dropped so far because they did not read.
    public var droppedStreams: Int { self.dropped.load(ordering: .relaxed) }

    /// Ends every stream (live ones get `cancelled`) and refuses new ones.
    public func close() {
        let ended = self.state.withLock { state -> [@Sendable (StreamEnd) -> Void] in
            state.isClosed = true
            var ended: [@Sendable (StreamEnd) -> Void] = []
            for id in Array(state.streams.keys) {
                if case .live(_, _, let onEnd) = state.streams[id]!.phase { ended.append(onEnd) }
                self.removeLocked(id, from: &state)
            }
            return ended
        }
        for onEnd in ended { onEnd(.cancelled) }
    }

    // MARK: Internals

    private static func encode(_ event: OrderEvent) -> String {
        ServerSentEventEncoder.encode(ServerSentEvent(id: String(event.id), event: event.name, data: event.data))
    }

    /// Drops a stream whose client does not read: closes its connection, ends it.
    private func drop(id: Int) {
        let dropped = self.state.withLock { state -> (@Sendable () -> Void, (@Sendable (StreamEnd) -> Void)?)? in
            guard let stream = state.streams[id] else { return nil }
            self.removeLocked(id, from: &state)
            if case .live(_, _, let onEnd) = stream.phase { return (stream.onOverflow, onEnd) }
            return (stream.onOverflow, nil)
        }
        guard let (overflow, onEnd) = dropped else { return }
        self.countDrop(overflow)
        onEnd?(.dropped)
    }

    private func countDrop(_ overflow: @Sendable () -> Void) {
        self.dropped.add(1, ordering: .relaxed)
        overflow()
    }

    fileprivate func remove(id: Int, reason: StreamEnd) {
        let onEnd = self.state.withLock { state -> (@Sendable (StreamEnd) -> Void)? in
            guard let stream = state.streams[id] else { return nil }
            self.removeLocked(id, from: &state)
            if case .live(_, _, let onEnd) = stream.phase { return onEnd }
            return nil
        }
        onEnd?(reason)
    }

    private func removeLocked(_ id: Int, from state: inout State) {
        guard let stream = state.streams.removeValue(forKey: id) else { return }
        state.streamsPerAddress[stream.address, default: 1] -= 1
        if state.streamsPerAddress[stream.address] == 0 { state.streamsPerAddress[stream.address] = nil }
        state.byOrder[stream.orderID]?.removeAll { $0 == id }
        if state.byOrder[stream.orderID]?.isEmpty == true {
            state.byOrder[stream.orderID] = nil
            state.lastDelivered[stream.orderID] = nil
        }
    }

    /// When a live stream may next need the hub: a heartbeat after it last wrote to it, or its
    /// maximum age, whichever comes first.
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
}

extension StreamHub: RegistrationOwner {
    func forget(id: Int) { self.remove(id: id, reason: .cancelled) }
}
