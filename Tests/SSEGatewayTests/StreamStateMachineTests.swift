import EventLog
import Foundation
import SSEGateway
import Testing

private let opened = ContinuousClock.now
private let policy = StreamPolicy(bufferSize: 3, heartbeat: .seconds(15), maximumAge: .seconds(60))

private func event(_ id: Int64, _ name: String = "status") -> OrderEvent {
    OrderEvent(id: id, orderID: "a", name: name, data: "{}", createdAt: Date(timeIntervalSince1970: 0))
}

private func events(_ ids: ClosedRange<Int64>, finishAt: Int64? = nil) -> [OrderEvent] {
    ids.map { event($0, $0 == finishAt ? "finish" : "status") }
}

/// The four places a stream can be in: registered (start not read), replaying (start read),
/// live (last id 5, quiet since it opened), ended.
enum Place: CaseIterable, Sendable {
    case registered, replaying, live, ended

    var machine: StreamStateMachine {
        var machine = StreamStateMachine(openedAt: opened)
        switch self {
        case .registered:
            break
        case .replaying:
            _ = machine.startRead(cursor: 5, latestEventID: 5, finishEventID: nil)
        case .live:
            _ = machine.startRead(cursor: 5, latestEventID: 5, finishEventID: nil)
            _ = machine.replayFinished(quietSince: opened)
        case .ended:
            _ = machine.cancelled()
        }
        return machine
    }
}

@Suite("Stream state machine")
struct StreamStateMachineTests {
    // MARK: Every input in every state

    /// Events read by the relay: held while replaying (above what the replay reads), written once
    /// and in order when live, nothing once ended.
    @Test(arguments: Place.allCases)
    func relayEvents(in place: Place) {
        var machine = place.machine
        let action = machine.eventsPublished(events(4...6), following: nil, now: opened, policy: policy)
        switch place {
        case .registered, .replaying:
            #expect(action == .none)
            guard case .replaying(let replaying) = machine.state else {
                Issue.record("not replaying: \(machine.state)")
                return
            }
            #expect(replaying.held.map(\.id) == (place == .registered ? [4, 5, 6] : [6]))
        case .live:
            #expect(action == .write(2..<3))
            #expect(machine.lastSent == 6)
        case .ended:
            #expect(action == .none && machine.state == .ended(.cancelled))
        }
    }

    /// This instance's commits: only a live stream whose last id is their predecessor takes them.
    @Test(arguments: Place.allCases)
    func committedEvents(in place: Place) {
        var inLine = place.machine
        var behind = place.machine
        let inLineAction = inLine.eventsPublished(events(6...7), following: 5, now: opened, policy: policy)
        let behindAction = behind.eventsPublished(events(9...9), following: 8, now: opened, policy: policy)
        #expect(inLineAction == (place == .live ? .write(0..<2) : .none))
        #expect(behindAction == .none)
        if case .replaying(let replaying) = inLine.state { #expect(replaying.held.isEmpty) }
    }

    /// The start: read the log when it holds more than the cursor, or when events were let go.
    @Test(arguments: Place.allCases)
    func startRead(in place: Place) {
        var machine = place.machine
        let action = machine.startRead(cursor: 5, latestEventID: 9, finishEventID: nil)
        switch place {
        case .registered, .replaying: #expect(action == .readLog)
        case .live, .ended: #expect(action == .skipLog)
        }
        var fresh = StreamStateMachine(openedAt: opened)
        #expect(fresh.startRead(cursor: 9, latestEventID: 9, finishEventID: nil) == .skipLog)
    }

    /// A page of the replay: written above the cursor while replaying; a stream that ended
    /// meanwhile stops. (A live stream has no replay: asking is a bug, caught by a precondition.)
    @Test(arguments: [Place.replaying, .ended])
    func replayRead(in place: Place) {
        var machine = place.machine
        let action = machine.replayRead(events(4...7))
        #expect(action == (place == .replaying ? .write(events(6...7)) : .stop(.cancelled)))
    }

    /// The replay's end: live with what was held, or the end that came meanwhile.
    @Test(arguments: [Place.registered, .replaying, .ended])
    func replayFinished(in place: Place) {
        var machine = place.machine
        let action = machine.replayFinished(quietSince: opened)
        switch place {
        case .registered, .replaying:
            #expect(action == .goLive([]))
            #expect(machine.lastSent == (place == .registered ? 0 : 5))
        case .live, .ended:
            #expect(action == .ended(.cancelled))
        }
    }

    /// Heartbeats and ages concern live streams only: a replaying stream's time is bounded by
    /// the transport's deadline for its replay, not here.
    @Test(arguments: Place.allCases)
    func heartbeatDue(in place: Place) {
        var machine = place.machine
        let action = machine.heartbeatDue(now: opened + .seconds(16), policy: policy)
        #expect(action == (place == .live ? .keepalive : .none))
        #expect(machine.nextDue(policy: policy) == (place == .live ? opened + .seconds(31) : nil))
    }

    /// Shutdown: a live stream gets a short `retry:` and ends; a replaying one ends as it goes live.
    @Test(arguments: Place.allCases)
    func shutdown(in place: Place) {
        var machine = place.machine
        let action = machine.shutdownRequested()
        switch place {
        case .registered, .replaying:
            #expect(action == .endWhenLive)
            #expect(machine.replayFinished(quietSince: opened) == .writeRetryAndEnd)
            #expect(machine.state == .ended(.shutdown))
        case .live:
            #expect(action == .writeRetryAndEnd && machine.state == .ended(.shutdown))
        case .ended:
            #expect(action == .none)
        }
    }

    /// Ends from outside: a live stream's `onEnd` is told; a replaying one is forgotten (its task
    /// sees the end); an ended one is left alone.
    @Test(arguments: Place.allCases)
    func endsFromOutside(in place: Place) {
        var cancelled = place.machine
        var refused = place.machine
        let expected: StreamStateMachine.EndAction =
            switch place {
            case .registered, .replaying: .forget
            case .live: .forgetAndNotify
            case .ended: .none
            }
        #expect(cancelled.cancelled() == expected)
        #expect(refused.writeRefused() == expected)
        #expect(cancelled.state == .ended(.cancelled))
        #expect(refused.state == .ended(place == .ended ? .cancelled : .dropped))
    }

    // MARK: Chains

    /// Replayed ids go out once, in increasing order, never at or below the cursor, and nothing
    /// after the order's `finish`, which ends the stream.
    @Test func replayWritesEachIDOnceThroughFinish() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 3, latestEventID: 9, finishEventID: nil)
        #expect(
            machine.replayRead([event(2), event(3), event(4), event(4), event(7)]) == .write([event(4), event(7)])
        )
        #expect(
            machine.replayRead([event(7), event(8), event(9, "finish"), event(10)])
                == .writeAndFinish([event(8), event(9, "finish")])
        )
        #expect(machine.replayRead([event(10)]) == .stop(.finished))
        #expect(machine.lastSent == nil)
    }

    /// Register, replay, live: each id once, in order, through `finish`, and nothing after it.
    @Test func replayThenLiveThenFinish() {
        var machine = StreamStateMachine(openedAt: opened)
        #expect(machine.eventsPublished(events(3...4), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.startRead(cursor: 2, latestEventID: 3, finishEventID: nil) == .readLog)
        #expect(machine.replayRead(events(3...5)) == .write(events(3...5)))
        #expect(machine.replayRead([]) == .write([]))
        #expect(machine.eventsPublished(events(5...6), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.replayFinished(quietSince: opened) == .goLive([event(6)]))
        #expect(machine.eventsPublished(events(6...6), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.eventsPublished(events(7...7), following: 6, now: opened, policy: policy) == .write(0..<1))
        let finishing = events(7...10, finishAt: 9)
        #expect(
            machine.eventsPublished(finishing, following: nil, now: opened, policy: policy) == .writeAndFinish(1..<3)
        )
        #expect(machine.state == .ended(.finished))
        #expect(machine.eventsPublished(events(11...11), following: nil, now: opened, policy: policy) == .none)
    }

    /// Reproducer: the relay's first read of an order starts at the beginning of its log. Before
    /// the stream's start is read, what overflows the buffer is let go, not the stream, and the
    /// stream then reads the log itself; after it, what the replay reads is not held at all.
    @Test func overflowBeforeTheStartIsReadIsLetGo() {
        var machine = StreamStateMachine(openedAt: opened)
        #expect(machine.eventsPublished(events(1...100), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.state != .ended(.dropped))
        #expect(machine.startRead(cursor: 100, latestEventID: 100, finishEventID: nil) == .readLog)
        #expect(machine.eventsPublished(events(1...100), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.replayRead([]) == .write([]))
        #expect(machine.eventsPublished(events(101...101), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.replayFinished(quietSince: opened) == .goLive([event(101)]))
    }

    /// Once the start is read, more held than the buffer takes drops the stream (the client
    /// resumes with Last-Event-ID).
    @Test func overflowAfterTheStartDrops() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 3, latestEventID: 3, finishEventID: nil)
        #expect(machine.eventsPublished(events(4...6), following: nil, now: opened, policy: policy) == .none)
        #expect(machine.eventsPublished(events(7...7), following: nil, now: opened, policy: policy) == .drop)
        #expect(machine.state == .ended(.dropped))
        #expect(machine.replayFinished(quietSince: opened) == .ended(.dropped))
    }

    /// Reproducer: a payment after the order had ended finishes it again. When that `finish`
    /// commits after the stream's start was read, the replay reads both: the earlier one is
    /// superseded and not sent, and the stream ends at the later one. An earlier `finish` below
    /// the start's is not sent either.
    @Test func aFinishCommittedDuringTheReplaySupersedesTheEarlierOne() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 1, latestEventID: 3, finishEventID: 3)
        let page = [event(2, "status"), event(3, "finish"), event(4, "status"), event(5, "finish")]
        #expect(machine.replayRead(page) == .writeAndFinish([event(2), event(4), event(5, "finish")]))
        #expect(machine.state == .ended(.finished))

        var resumed = StreamStateMachine(openedAt: opened)
        _ = resumed.startRead(cursor: 0, latestEventID: 5, finishEventID: 5)
        #expect(resumed.replayRead(page) == .writeAndFinish([event(2), event(4), event(5, "finish")]))
    }

    /// A `finish` held while replaying ends the stream as it goes live, after what came before it.
    @Test func aHeldFinishEndsTheStreamAsItGoesLive() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 0, latestEventID: 0, finishEventID: nil)
        _ = machine.eventsPublished(events(1...3, finishAt: 2), following: nil, now: opened, policy: policy)
        #expect(machine.replayFinished(quietSince: opened) == .writeAndFinish([event(1), event(2, "finish")]))
        #expect(machine.state == .ended(.finished))
    }

    /// Reproducer: a client that never reads its replay. The transport closes its connection at
    /// its deadline (the machine has no clock for replaying streams), which cancels the stream:
    /// the replay stops at its next page, and nothing goes live.
    @Test func aClientThatNeverReadsItsReplay() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 0, latestEventID: 10_000, finishEventID: nil)
        #expect(machine.replayRead(events(1...500)) == .write(events(1...500)))
        #expect(machine.heartbeatDue(now: opened + .seconds(3600), policy: policy) == .none)
        #expect(machine.cancelled() == .forget)
        #expect(machine.replayRead(events(501...1000)) == .stop(.cancelled))
        #expect(machine.replayFinished(quietSince: opened) == .ended(.cancelled))
    }

    /// Keepalives after a heartbeat of silence, none right after an event, and the end at the
    /// maximum age.
    @Test func heartbeatsAndAge() {
        var machine = StreamStateMachine(openedAt: opened)
        _ = machine.startRead(cursor: 0, latestEventID: 0, finishEventID: nil)
        _ = machine.replayFinished(quietSince: opened)
        #expect(machine.heartbeatDue(now: opened + .seconds(10), policy: policy) == .none)
        _ = machine.eventsPublished(events(1...1), following: nil, now: opened + .seconds(10), policy: policy)
        #expect(machine.heartbeatDue(now: opened + .seconds(16), policy: policy) == .none)
        #expect(machine.nextDue(policy: policy) == opened + .seconds(25))
        #expect(machine.heartbeatDue(now: opened + .seconds(25), policy: policy) == .keepalive)
        #expect(machine.heartbeatDue(now: opened + .seconds(26), policy: policy) == .none)
        #expect(machine.nextDue(policy: policy) == opened + .seconds(40))
        #expect(machine.heartbeatDue(now: opened + .seconds(60), policy: policy) == .expire)
        #expect(machine.state == .ended(.expired))
    }
}
