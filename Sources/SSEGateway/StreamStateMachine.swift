package import EventLog

/// Why a stream ended.
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

/// What a hub holds its streams to: room for events while replaying, and the heartbeat and age
/// of live ones.
public struct StreamPolicy: Sendable, Hashable {
    /// Events a replaying stream may have waiting before it is dropped.
    public var bufferSize: Int
    /// A live stream the hub wrote nothing to for this long gets a `: keepalive` comment.
    public var heartbeat: Duration
    /// A live stream this old is ended (the client resumes with Last-Event-ID).
    public var maximumAge: Duration

    public init(bufferSize: Int, heartbeat: Duration = .seconds(15), maximumAge: Duration = .seconds(3600)) {
        precondition(bufferSize > 0, "a stream needs room for at least one event")
        self.bufferSize = bufferSize
        self.heartbeat = heartbeat
        self.maximumAge = maximumAge
    }
}

/// The life of one stream as a value: replaying, live, ended.
///
/// ```
///              startRead, replayRead,
///              eventsPublished (held)        replayFinished
///   replaying ───────────────────► replaying ─────────────► live ─┐ eventsPublished (written),
///       │ finish replayed; held events     │ shutdown pending;     │ heartbeatDue (keepalive)
///       │ overflowing once the replay's    │ finish held           ◄┘
///       │ reach is known; cancelled;       ▼                       │ finish published; age;
///       └──────────────────────────────► ended ◄───────────────────┘ shutdown; write refused;
///                                                                    cancelled
/// ```
///
/// A stream registers before it reads the log (register, then replay, then live): events
/// committed meanwhile are both in what it reads and published to it. While it replays, the
/// machine holds what is published above the replay's reach (at most the policy's buffer); when
/// the replay is done it hands over those above the last id the replay wrote. Live, it writes
/// each id once, in order, and nothing after `finish`. Ids within an order commit in increasing
/// order (the store appends under the order's row lock), so no event is skipped.
///
/// The hub feeds it what happened, under its lock, and performs the action it returns: writes to
/// the stream's sink, its `onEnd`, closing its connection. The machine holds no IO and reads no
/// clock: every input that depends on time is given `now`.
package struct StreamStateMachine: Sendable, Hashable {
    package enum State: Sendable, Hashable {
        case replaying(Replaying)
        case live(Live)
        case ended(StreamEnd)
    }

    /// A stream whose task writes its snapshot and replays the log.
    package struct Replaying: Sendable, Hashable {
        /// The last id the stream's task wrote: where the client resumes from (its Last-Event-ID,
        /// or the snapshot's id) until a replayed event follows; `nil` until the start is read.
        package var written: Int64?
        /// The order's last `finish` when the start was read: an earlier one is not sent.
        package var lastFinish: Int64?
        /// Published meanwhile, above ``covered``: written as the stream goes live.
        package var held: [OrderEvent] = []
        /// What the replay reads itself: the log through this id (the newest when the start was
        /// read); `nil` until then.
        package var covered: Int64?
        /// More was published before ``covered`` was known than the buffer holds, and was let go:
        /// the stream must read the log even if its start said there was nothing to read.
        package var letGo = false
        /// The server is stopping: the stream ends with a short `retry:` as it goes live.
        package var shutdownRequested = false
    }

    /// A stream the hub writes to directly.
    package struct Live: Sendable, Hashable {
        /// The last id written: nothing at or below it goes out again.
        package var lastSent: Int64
        /// When the hub last wrote to it (an event or a keepalive).
        package var quietSince: ContinuousClock.Instant
    }

    /// What to do once the stream's start is read.
    package enum StartAction: Sendable, Hashable {
        /// Replay the log after the cursor: it holds more, or events were let go.
        case readLog
        /// Nothing to read: what committed since the start was published, and is held.
        case skipLog
    }

    /// What to do with a page the replay read.
    package enum ReplayAction: Sendable, Hashable {
        /// Write these (possibly none), and read on if the page was full.
        case write([OrderEvent])
        /// Write these, the last of them the order's `finish`: the stream has ended.
        case writeAndFinish([OrderEvent])
        /// The stream ended meanwhile (cancelled, dropped, closed): stop.
        case stop(StreamEnd)
    }

    /// What to do when the replay is done.
    package enum GoLiveAction: Sendable, Hashable {
        /// Write these held events (possibly none); the hub writes to the stream from now on.
        case goLive([OrderEvent])
        /// Write these held events, the last its `finish`: the stream has ended.
        case writeAndFinish([OrderEvent])
        /// Write a short `retry:`: the server is stopping, and so has the stream.
        case writeRetryAndEnd
        /// The stream ended meanwhile.
        case ended(StreamEnd)
    }

    /// What to do with events published for the stream's order.
    package enum PublishAction: Sendable, Hashable {
        /// Nothing now (held while replaying, had already, or not in line).
        case none
        /// Write the published events at these positions.
        case write(Range<Int>)
        /// Write the published events at these positions, the last its `finish`: the stream has ended.
        case writeAndFinish(Range<Int>)
        /// Close the connection: more came while replaying than the buffer holds. The client
        /// resumes with Last-Event-ID.
        case drop
    }

    /// What the heartbeat check found.
    package enum HeartbeatAction: Sendable, Hashable {
        case none
        /// Write a `: keepalive` comment.
        case keepalive
        /// End it: it reached its maximum age.
        case expire
    }

    /// What to do when the server is stopping.
    package enum ShutdownAction: Sendable, Hashable {
        /// Write a short `retry:` and end the stream.
        case writeRetryAndEnd
        /// Nothing yet: it ends as it goes live.
        case endWhenLive
        case none
    }

    /// What to do when the stream ends from outside (the client left, or did not read).
    package enum EndAction: Sendable, Hashable {
        /// Forget it: it was not live, and its task sees the end.
        case forget
        /// Forget it and call its `onEnd`: it was live.
        case forgetAndNotify
        /// Ended already.
        case none
    }

    package private(set) var state: State
    /// When the stream was admitted: its maximum age counts from here.
    package let openedAt: ContinuousClock.Instant

    package init(openedAt: ContinuousClock.Instant) {
        self.state = .replaying(Replaying())
        self.openedAt = openedAt
    }

    // MARK: Replaying

    /// The stream's start was read: it resumes after `cursor`, the log held events through
    /// `latestEventID`, and its last `finish` was `finishEventID`. Events up to `latestEventID` are
    /// no longer held: the replay reads them. (Otherwise the relay's first read of an order that
    /// had no stream here, which starts at the beginning of its log, would fill the buffer with
    /// events the stream never needed, and drop it.)
    package mutating func startRead(cursor: Int64, latestEventID: Int64, finishEventID: Int64?) -> StartAction {
        guard case .replaying(var replaying) = self.state else { return .skipLog }
        replaying.held.removeAll { $0.id <= latestEventID }
        replaying.covered = latestEventID
        replaying.written = cursor
        replaying.lastFinish = finishEventID
        self.state = .replaying(replaying)
        return cursor < latestEventID || replaying.letGo ? .readLog : .skipLog
    }

    /// A page of the log after the last id written, oldest first. Each id goes out once, in
    /// order. A `finish` below the order's last is superseded (a payment after the order had
    /// ended) and not sent: the last is the start's, or a later one in this page, committed
    /// since the start was read.
    package mutating func replayRead(_ page: [OrderEvent]) -> ReplayAction {
        switch self.state {
        case .ended(let end):
            return .stop(end)
        case .live:
            preconditionFailure("Invalid state: \(self.state)")
        case .replaying(var replaying):
            guard let written = replaying.written else { preconditionFailure("the replay comes after the start") }
            let lastFinish = max(replaying.lastFinish ?? 0, page.last(where: \.isFinish)?.id ?? 0)
            let (writes, finished) = Self.writes(
                of: page.lazy.filter { !($0.isFinish && $0.id < lastFinish) },
                after: written
            )
            if finished {
                self.state = .ended(.finished)
                return .writeAndFinish(writes)
            }
            replaying.written = writes.last?.id ?? written
            self.state = .replaying(replaying)
            return .write(writes)
        }
    }

    /// The replay is done: the events held meanwhile above the last id written go out first
    /// (through `finish`, if one is among them), then the stream is live.
    ///
    /// - Parameter quietSince: when its first keepalive counts from (the hub spreads these, so
    ///   that streams opened together do not all fall due in the same tick).
    package mutating func replayFinished(quietSince: ContinuousClock.Instant) -> GoLiveAction {
        switch self.state {
        case .ended(let end):
            return .ended(end)
        case .live:
            preconditionFailure("Invalid state: \(self.state)")
        case .replaying(let replaying):
            if replaying.shutdownRequested {
                self.state = .ended(.shutdown)
                return .writeRetryAndEnd
            }
            let written = replaying.written ?? 0
            let (writes, finished) = Self.writes(of: replaying.held.sorted { $0.id < $1.id }, after: written)
            if finished {
                self.state = .ended(.finished)
                return .writeAndFinish(writes)
            }
            self.state = .live(Live(lastSent: writes.last?.id ?? written, quietSince: quietSince))
            return .goLive(writes)
        }
    }

    /// Of `events` in id order, those above `after`, through the first `finish`; and whether
    /// one was reached.
    private static func writes(of events: some Sequence<OrderEvent>, after: Int64) -> ([OrderEvent], finished: Bool) {
        var writes: [OrderEvent] = []
        for event in events where event.id > after && event.id > (writes.last?.id ?? after) {
            writes.append(event)
            if event.isFinish { return (writes, true) }
        }
        return (writes, false)
    }

    // MARK: Events

    /// Events of the stream's order, in id order: read from the log by the relay (`predecessor`
    /// `nil`), or committed by this instance, following `predecessor` in the order's log. A
    /// commit goes only to a live stream whose last id is its predecessor: any other gets it from
    /// the relay's read of the log, which follows.
    package mutating func eventsPublished(
        _ events: [OrderEvent],
        following predecessor: Int64?,
        now: ContinuousClock.Instant,
        policy: StreamPolicy
    ) -> PublishAction {
        guard let newest = events.last?.id else { return .none }
        switch self.state {
        case .ended:
            return .none
        case .replaying(var replaying):
            let floor = replaying.covered ?? 0
            guard predecessor == nil, newest > floor else { return .none }
            replaying.held += events.drop { $0.id <= floor }
            if replaying.held.count > policy.bufferSize {
                guard replaying.covered == nil else {
                    self.state = .ended(.dropped)
                    return .drop
                }
                // Everything published so far has committed: the stream's read of the log,
                // which comes after its start, finds it (``startRead``'s `.readLog`).
                replaying.held = []
                replaying.letGo = true
            }
            self.state = .replaying(replaying)
            return .none
        case .live(var live):
            if let predecessor, live.lastSent != predecessor { return .none }
            guard let first = events.firstIndex(where: { $0.id > live.lastSent }) else { return .none }
            let finish = events[first...].firstIndex(where: \.isFinish)
            let end = finish.map { $0 + 1 } ?? events.endIndex
            if finish != nil {
                self.state = .ended(.finished)
                return .writeAndFinish(first..<end)
            }
            live.lastSent = events[end - 1].id
            live.quietSince = now
            self.state = .live(live)
            return .write(first..<end)
        }
    }

    // MARK: Time

    /// When a live stream may next need the hub: a heartbeat after it last wrote to it, or its
    /// maximum age, whichever comes first; `nil` unless live.
    package func nextDue(policy: StreamPolicy) -> ContinuousClock.Instant? {
        guard case .live(let live) = self.state else { return nil }
        return min(live.quietSince + policy.heartbeat, self.openedAt + policy.maximumAge)
    }

    package mutating func heartbeatDue(now: ContinuousClock.Instant, policy: StreamPolicy) -> HeartbeatAction {
        guard case .live(var live) = self.state else { return .none }
        if now - self.openedAt >= policy.maximumAge {
            self.state = .ended(.expired)
            return .expire
        }
        guard now - live.quietSince >= policy.heartbeat else { return .none }
        live.quietSince = now
        self.state = .live(live)
        return .keepalive
    }

    // MARK: Ends from outside

    package mutating func shutdownRequested() -> ShutdownAction {
        switch self.state {
        case .live:
            self.state = .ended(.shutdown)
            return .writeRetryAndEnd
        case .replaying(var replaying):
            replaying.shutdownRequested = true
            self.state = .replaying(replaying)
            return .endWhenLive
        case .ended:
            return .none
        }
    }

    /// The client left, or its registration was forgotten.
    package mutating func cancelled() -> EndAction {
        self.end(.cancelled)
    }

    /// A write to the stream was refused: its client does not read.
    package mutating func writeRefused() -> EndAction {
        self.end(.dropped)
    }

    private mutating func end(_ reason: StreamEnd) -> EndAction {
        switch self.state {
        case .ended:
            return .none
        case .replaying:
            self.state = .ended(reason)
            return .forget
        case .live:
            self.state = .ended(reason)
            return .forgetAndNotify
        }
    }

    /// The last id written to a live stream: a lower bound of what its client has.
    package var lastSent: Int64? {
        guard case .live(let live) = self.state else { return nil }
        return live.lastSent
    }
}
