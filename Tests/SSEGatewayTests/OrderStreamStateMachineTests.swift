import SSEGateway
import Testing

@Suite("OrderStreamStateMachine")
struct OrderStreamStateMachineTests {
    /// Replay sends the log after Last-Event-ID; live events during it wait, and duplicates are dropped.
    @Test func replayThenLiveWithoutGapOrDuplicate() {
        var machine = OrderStreamStateMachine(lastEventID: 3)
        #expect(machine.replayed(id: 2, isFinish: false) == .drop)
        #expect(machine.replayed(id: 4, isFinish: false) == .send)
        // Event 5 commits while the replay runs: it reaches the live buffer and the replay both.
        #expect(machine.liveEventArrived(id: 5, isFinish: false) == .hold)
        #expect(machine.replayed(id: 5, isFinish: false) == .send)
        #expect(machine.liveEventArrived(id: 6, isFinish: false) == .hold)
        #expect(machine.replayFinished() == [6])
        #expect(machine.liveEventArrived(id: 6, isFinish: false) == .send)
        #expect(machine.liveEventArrived(id: 5, isFinish: false) == .drop)
        #expect(machine.liveEventArrived(id: 7, isFinish: false) == .send)
        #expect(machine.lastSent == 7)
    }

    /// `finish` ends the stream, whether it comes from the replay or live; nothing follows it.
    @Test func finishEndsTheStream() {
        var replayed = OrderStreamStateMachine(lastEventID: 0)
        #expect(replayed.replayed(id: 1, isFinish: false) == .send)
        #expect(replayed.replayed(id: 2, isFinish: true) == .sendAndFinish)
        #expect(replayed.replayed(id: 3, isFinish: false) == .drop)
        #expect(replayed.replayFinished().isEmpty)
        #expect(replayed.liveEventArrived(id: 4, isFinish: false) == .drop)
        #expect(replayed.lastSent == nil)

        var live = OrderStreamStateMachine(lastEventID: 0)
        #expect(live.replayFinished().isEmpty)
        #expect(live.liveEventArrived(id: 9, isFinish: true) == .sendAndFinish)
        #expect(live.liveEventArrived(id: 10, isFinish: false) == .drop)
    }
}
