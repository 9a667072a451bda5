import SSEGateway
import Testing

@Suite("OrderStreamStateMachine")
struct OrderStreamStateMachineTests {
    /// Replayed ids go out once, in increasing order, never at or below the cursor.
    @Test func eachIDOnceInOrder() {
        var machine = OrderStreamStateMachine(cursor: 3)
        #expect(machine.eventArrived(id: 2, isFinish: false) == .drop)
        #expect(machine.eventArrived(id: 3, isFinish: false) == .drop)
        #expect(machine.eventArrived(id: 4, isFinish: false) == .send)
        #expect(machine.eventArrived(id: 4, isFinish: false) == .drop)
        #expect(machine.eventArrived(id: 7, isFinish: false) == .send)
        #expect(machine.lastSent == 7)
    }

    /// `finish` ends the stream; nothing follows it.
    @Test func finishEndsTheStream() {
        var machine = OrderStreamStateMachine(cursor: 0)
        #expect(machine.eventArrived(id: 1, isFinish: false) == .send)
        #expect(machine.eventArrived(id: 2, isFinish: true) == .sendAndEnd)
        #expect(machine.eventArrived(id: 3, isFinish: false) == .drop)
        #expect(machine.lastSent == nil)
        #expect(machine.isEnded)
    }
}
