public import EventLog
import Synchronization

/// Broadcasts ops events (`alert`, `stats`) to every open ops stream on this instance, written
/// straight to each stream's ``StreamSink`` like ``StreamHub`` does: each event is encoded once,
/// no task wakes per stream, and a stream whose client does not read is dropped (its `onOverflow`
/// closes the connection) instead of slowing the broadcast.
///
/// Its streams are admitted and registered as the order streams are (a ``StreamRegistry``, with
/// a total limit only), and each one's life is a ``StreamStateMachine`` that has nothing to
/// replay: it goes live once its `retry:` is written, or ends with a short `retry:` if the server
/// began stopping meanwhile. A broadcast goes to every live stream and is not the machines'
/// business: ops events are neither ordered per stream nor resumed.
///
/// Live streams are kept sorted by their writer's broadcast group (an event loop, in the server)
/// as they go live and leave, so a broadcast hands each group its sinks as they are, without
/// looking at each stream: gathering and sorting 10,000 streams took 18–26 ms before the first
/// write (BENCHMARKS.md, item 20).
public final class OpsFeed: Sendable {
    /// An ops stream's registration; forgetting it before it goes live frees its place.
    public struct Subscription: Sendable {
        public let id: Int
        let registration: Registration<OpsFeed>
    }

    private struct Stream {
        var machine: StreamStateMachine
        let onOverflow: @Sendable () -> Void
        /// Set as it goes live.
        var live: (sink: any StreamSink, onEnd: @Sendable (StreamEnd) -> Void)?
    }

    /// The live streams of one broadcast group, in no particular order: `ids[i]` is `sinks[i]`'s.
    private struct Group {
        var ids: [Int] = []
        var sinks: [any StreamSink] = []

        /// Adds a stream; returns its index.
        mutating func append(id: Int, sink: any StreamSink) -> Int {
            self.ids.append(id)
            self.sinks.append(sink)
            return self.ids.count - 1
        }

        /// Removes the stream at `index`, moving the last into its place; returns the id moved.
        mutating func remove(at index: Int) -> Int? {
            self.ids.swapAt(index, self.ids.count - 1)
            self.sinks.swapAt(index, self.sinks.count - 1)
            self.ids.removeLast()
            self.sinks.removeLast()
            return index < self.ids.count ? self.ids[index] : nil
        }
    }

    private struct State {
        var streams: StreamRegistry<Stream>
        var groups: [ObjectIdentifier?: Group] = [:]
        /// Where each live stream is in its group.
        var places: [Int: (group: ObjectIdentifier?, index: Int)] = [:]

        mutating func addLive(id: Int, sink: any StreamSink, group: ObjectIdentifier?) {
            self.places[id] = (group, self.groups[group, default: Group()].append(id: id, sink: sink))
        }

        /// Forgets the stream `id`, live or not.
        mutating func remove(id: Int) -> Stream? {
            if let (group, index) = self.places.removeValue(forKey: id),
                let moved = self.groups[group]!.remove(at: index)
            {
                self.places[moved] = (group, index)
            }
            return self.streams.remove(id)?.entry
        }
    }

    /// Ops streams this instance admits.
    public let limit: Int
    /// The `retry:` written to every ops stream when the server stops.
    public let shutdownRetry: Duration
    private let state: Mutex<State>
    private let writer: any StreamBatchWriter
    /// The alerts published lately: an alert goes out once, from this instance's commit or from
    /// its NOTIFY, whichever comes first.
    private let recentAlerts = Mutex(RecentIDs(capacity: 1024))

    public init(
        limit: Int,
        shutdownRetry: Duration = .milliseconds(250),
        writer: any StreamBatchWriter = OneSinkAtATime()
    ) {
        self.limit = limit
        self.shutdownRetry = shutdownRetry
        self.writer = writer
        self.state = Mutex(State(streams: StreamRegistry(limits: .total(limit))))
    }

    public func subscribe(
        onOverflow: @escaping @Sendable () -> Void,
        now: ContinuousClock.Instant = .now
    ) throws(StreamRefusal) -> Subscription {
        let stream = Stream(machine: StreamStateMachine(openedAt: now), onOverflow: onOverflow)
        let admitted = self.state.withLock { state in
            Result { () throws(StreamRefusal) in try state.streams.admit(key: nil, address: nil, stream) }
        }
        let id = try admitted.get()
        return Subscription(id: id, registration: Registration(id: id, owner: self))
    }

    /// From now on events go to `sink`, until the stream ends; `false` if it ended already (the
    /// server is stopping, or it is gone) and `onEnd` will not be called.
    package func goLive(
        _ subscription: Subscription,
        sink: any StreamSink,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) -> Bool {
        let group = self.writer.group(of: sink)
        let action = self.state.withLock { state -> StreamStateMachine.GoLiveAction in
            let id = subscription.id
            guard let action = state.streams.update(id, { $0.machine.replayFinished(quietSince: .now) }) else {
                return .ended(.cancelled)
            }
            if case .goLive = action {
                state.streams.update(id) { $0.live = (sink, onEnd) }
                state.addLive(id: id, sink: sink, group: group)
            } else {
                _ = state.remove(id: id)
            }
            return action
        }
        switch action {
        case .goLive:
            return true
        case .writeRetryAndEnd:
            _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
            return false
        case .ended, .writeAndFinish:
            return false
        }
    }

    public func unsubscribe(_ subscription: Subscription) {
        self.remove(id: subscription.id)
    }

    /// Ends one stream with a short `retry:` (the server is stopping).
    public func end(_ subscription: Subscription) {
        let live = self.state.withLock { state -> (any StreamSink, @Sendable (StreamEnd) -> Void)? in
            guard state.streams.update(subscription.id, { $0.machine.shutdownRequested() }) == .writeRetryAndEnd
            else { return nil }
            return state.remove(id: subscription.id)?.live
        }
        guard let (sink, onEnd) = live else { return }
        _ = sink.send(ServerSentEventEncoder.retry(self.shutdownRetry))
        onEnd(.shutdown)
    }

    /// Sends an event to every live ops stream. Never waits. A `background` event (`stats`: it has
    /// no id, and the next one replaces it) is written a part at a time, so an alert published
    /// meanwhile goes out between the parts instead of after all 10,000 (BENCHMARKS.md, item 21).
    public func publish(_ event: ServerSentEvent, background: Bool = false) {
        assert(!background || event.id == nil, "a background event is written out of order: it may not have an id")
        // Copies of the groups' arrays, which share their storage until a stream comes or goes.
        let groups = self.state.withLock { Array($0.groups.values) }
        guard groups.contains(where: { !$0.ids.isEmpty }) else { return }
        let text = ServerSentEventEncoder.encode(event)
        for group in groups where !group.ids.isEmpty {
            self.writer.broadcast(text, to: group.sinks, paced: background) { refused in
                for index in refused { self.drop(id: group.ids[index]) }
            }
        }
    }

    /// Sends a stored alert to every live ops stream, unless it went out already.
    public func publish(_ alert: Alert) {
        guard self.recentAlerts.withLock({ $0.insert(alert.id) }) else { return }
        self.publish(ServerSentEvent(id: String(alert.id), event: "alert", data: alert.data))
    }

    /// Whether the alert went out lately (then it need not be read).
    public func hasPublished(alertID: Int64) -> Bool {
        self.recentAlerts.withLock { $0.contains(alertID) }
    }

    public var openStreams: Int { self.state.withLock { $0.streams.count } }

    fileprivate func remove(id: Int) {
        let removed = self.state.withLock { state -> Stream? in
            guard state.streams.update(id, { $0.machine.cancelled() }) != nil else { return nil }
            return state.remove(id: id)
        }
        removed?.live?.onEnd(.cancelled)
    }

    /// Ends a stream whose client does not read.
    private func drop(id: Int) {
        let dropped = self.state.withLock { state -> Stream? in
            guard state.streams.update(id, { $0.machine.writeRefused() }) != nil else { return nil }
            return state.remove(id: id)
        }
        dropped?.onOverflow()
        dropped?.live?.onEnd(.dropped)
    }
}

extension OpsFeed: RegistrationOwner {
    func forget(id: Int) { self.remove(id: id) }
}

extension OpsFeed.Subscription {
    /// Starts an ops stream: `retry:` (awaited, through `write`), then the feed writes every event
    /// to `sink` and calls `onEnd` once when the stream ends. Returns as soon as the stream is
    /// live: `true`, or `false` when it ended already (`onEnd` is not called). Keep the
    /// subscription until the stream ends.
    public func start(
        feed: OpsFeed,
        settings: StreamSettings,
        write: (String) async throws -> Void,
        sink: any StreamSink,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) async throws -> Bool {
        do {
            try await write(ServerSentEventEncoder.retry(settings.retry))
        } catch {
            feed.unsubscribe(self)
            throw error
        }
        return feed.goLive(self, sink: sink, onEnd: onEnd)
    }
}

/// The last `capacity` ids inserted.
private struct RecentIDs {
    private var ids: Set<Int64> = []
    private var order: [Int64] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func contains(_ id: Int64) -> Bool { self.ids.contains(id) }

    /// Adds `id`, forgetting the oldest beyond `capacity`; false if it was there.
    mutating func insert(_ id: Int64) -> Bool {
        guard self.ids.insert(id).inserted else { return false }
        if self.order.count < self.capacity {
            self.order.append(id)
        } else {
            self.ids.remove(self.order[self.next])
            self.order[self.next] = id
            self.next = (self.next + 1) % self.capacity
        }
        return true
    }
}
