import Postgres
import Testing

@Suite("ListenerStateMachine")
struct ListenerStateMachineTests {
    private let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))

    /// Start connects; success reports a gap (even the first time) and listens.
    @Test func startsAndReportsAGap() {
        var machine = ListenerStateMachine(backoff: self.backoff)
        #expect(machine.start() == .connect)
        #expect(machine.state == .connecting(attempt: 0))
        #expect(machine.connectSucceeded() == .reportGapAndListen)
        #expect(machine.state == .listening)
    }

    /// Failures back off exponentially up to the cap, and a success resets the count.
    @Test func backsOffWithACap() {
        var machine = ListenerStateMachine(backoff: self.backoff)
        #expect(machine.start() == .connect)
        #expect(machine.connectFailed() == .wait(.milliseconds(100)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectFailed() == .wait(.milliseconds(200)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectFailed() == .wait(.milliseconds(400)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectFailed() == .wait(.milliseconds(800)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectFailed() == .wait(.seconds(1)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectFailed() == .wait(.seconds(1)))
        #expect(machine.backoffElapsed() == .connect)
        #expect(machine.connectSucceeded() == .reportGapAndListen)
        #expect(machine.connectionLost() == .connect)
        #expect(machine.connectFailed() == .wait(.milliseconds(100)))
    }

    /// A lost connection reconnects at once, and the new connection reports a gap again.
    @Test func lostConnectionReconnectsAndReportsAGap() {
        var machine = ListenerStateMachine(backoff: self.backoff)
        #expect(machine.start() == .connect)
        #expect(machine.connectSucceeded() == .reportGapAndListen)
        #expect(machine.connectionLost() == .connect)
        #expect(machine.state == .connecting(attempt: 0))
        #expect(machine.connectSucceeded() == .reportGapAndListen)
    }

    /// Shutdown wins from every state, and late reports after it only say stop.
    @Test func shutdownFromAnyState() {
        var machine = ListenerStateMachine(backoff: self.backoff)
        #expect(machine.start() == .connect)
        #expect(machine.shutdownRequested() == .stop)
        #expect(machine.connectSucceeded() == .stop)
        #expect(machine.connectFailed() == .stop)
        #expect(machine.state == .stopped)

        var listening = ListenerStateMachine(backoff: self.backoff)
        _ = listening.start()
        _ = listening.connectSucceeded()
        #expect(listening.shutdownRequested() == .stop)
        #expect(listening.connectionLost() == .stop)

        var waiting = ListenerStateMachine(backoff: self.backoff)
        _ = waiting.start()
        _ = waiting.connectFailed()
        #expect(waiting.shutdownRequested() == .stop)
        #expect(waiting.backoffElapsed() == .stop)
    }

    /// The backoff doubles from the initial delay and never exceeds the maximum.
    @Test func backoffDelays() {
        let backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(5))
        #expect(backoff.delay(afterFailures: 1) == .milliseconds(50))
        #expect(backoff.delay(afterFailures: 2) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 7) == .milliseconds(3200))
        #expect(backoff.delay(afterFailures: 8) == .seconds(5))
        #expect(backoff.delay(afterFailures: 1000) == .seconds(5))
    }
}
