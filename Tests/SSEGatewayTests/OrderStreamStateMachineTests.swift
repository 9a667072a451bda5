import SSEGateway
import Testing

@Suite("OrderStreamStateMachine")
struct OrderStreamStateMachineTests {
    private let start = ContinuousClock.now

    private func machine(cursor: Int64 = 3) -> OrderStreamStateMachine {
        OrderStreamStateMachine(cursor: cursor, now: self.start, heartbeat: .seconds(15), maximumAge: .seconds(60))
    }

    /// Replayed and live copies of the same event go out once, in increasing id order.
    @Test func eachIDOnceInOrder() {
        var machine = self.machine(cursor: 3)
        #expect(machine.eventArrived(id: 2, isFinish: false, now: self.start) == .drop)
        #expect(machine.eventArrived(id: 4, isFinish: false, now: self.start) == .send)
        #expect(machine.eventArrived(id: 5, isFinish: false, now: self.start) == .send)
        // Event 5 committed while the stream replayed: its live copy arrives after the replay.
        #expect(machine.eventArrived(id: 5, isFinish: false, now: self.start) == .drop)
        #expect(machine.eventArrived(id: 4, isFinish: false, now: self.start) == .drop)
        #expect(machine.eventArrived(id: 7, isFinish: false, now: self.start) == .send)
        #expect(machine.lastSent == 7)
    }

    /// `finish` ends the stream; nothing follows it.
    @Test func finishEndsTheStream() {
        var machine = self.machine(cursor: 0)
        #expect(machine.eventArrived(id: 1, isFinish: false, now: self.start) == .send)
        #expect(machine.eventArrived(id: 2, isFinish: true, now: self.start) == .sendAndEnd)
        #expect(machine.eventArrived(id: 3, isFinish: false, now: self.start) == .drop)
        #expect(machine.lastSent == nil)
        #expect(machine.isEnded)
        #expect(machine.tick(now: self.start + .seconds(30)) == .nothing)
        #expect(machine.endRequested() == false)
    }

    /// The hub ticks a stream it handed nothing for a heartbeat interval; the stream then sends a
    /// keepalive unless it wrote within the last half interval (a replay the hub did not see).
    @Test func keepaliveOnTickUnlessJustWritten() {
        var machine = self.machine()
        #expect(machine.tick(now: self.start + .seconds(15)) == .sendKeepalive)
        #expect(machine.eventArrived(id: 4, isFinish: false, now: self.start + .seconds(20)) == .send)
        #expect(machine.tick(now: self.start + .seconds(25)) == .nothing)
        #expect(machine.tick(now: self.start + .seconds(28)) == .sendKeepalive)
        #expect(machine.tick(now: self.start + .seconds(29)) == .nothing)
    }

    /// A stream ends at its maximum age, however busy, so the client resumes elsewhere.
    @Test func endsAtMaximumAge() {
        var machine = self.machine()
        #expect(machine.eventArrived(id: 4, isFinish: false, now: self.start + .seconds(59)) == .send)
        #expect(machine.tick(now: self.start + .seconds(60)) == .end)
        #expect(machine.isEnded)
        #expect(machine.eventArrived(id: 5, isFinish: false, now: self.start + .seconds(61)) == .drop)
    }

    /// Shutdown ends an open stream once (one parting `retry:`).
    @Test func endRequestedOnce() {
        var machine = self.machine()
        #expect(machine.endRequested() == true)
        #expect(machine.endRequested() == false)
        #expect(machine.eventArrived(id: 4, isFinish: false, now: self.start) == .drop)
    }
}
