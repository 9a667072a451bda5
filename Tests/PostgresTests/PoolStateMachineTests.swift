public import Postgres
import Testing

/// Connections are strings and waiters are strings, so each step reads as what it means.
typealias TestPoolMachine = PoolStateMachine<String, String>

@Suite("PoolStateMachine")
struct PoolStateMachineTests {
    /// Requests before the pool runs queue; starting serves them with empty slots up to the maximum.
    @Test func waitsUntilStarted() {
        var machine = TestPoolMachine(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .mustWait)
        #expect(machine.leaseRequested(id: 1, waiter: "early") == .queued)
        #expect(machine.leaseRequested(id: 2, waiter: "later") == .queued)
        #expect(machine.started() == ["early"])
        #expect(machine.counts == (lent: 1, idle: 0, waiting: 1))
        #expect(machine.released("c1") == .handOver("c1", to: "later"))
    }

    /// Slots are lent empty until the maximum; then a caller without a waiter is told to wait.
    @Test func lendsUpToTheMaximumThenWaits() {
        var machine = TestPoolMachine.started(maximumConnections: 2)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .mustWait)
        #expect(machine.counts == (lent: 2, idle: 0, waiting: 0))
    }

    /// A returned connection goes idle and is lent again before any new one is opened.
    @Test func reusesIdleConnectionsFirst() {
        var machine = TestPoolMachine.started(maximumConnections: 2)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.released("c1") == .none)
        #expect(machine.counts == (lent: 0, idle: 1, waiting: 0))
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease("c1"))
    }

    /// Waiters are served in arrival order, each with the released connection handed over directly.
    @Test func handsOverToWaitersInOrder() {
        var machine = TestPoolMachine.started(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        #expect(machine.leaseRequested(id: 2, waiter: "w2") == .queued)
        #expect(machine.released("c1") == .handOver("c1", to: "w1"))
        #expect(machine.released("c1") == .handOver("c1", to: "w2"))
        #expect(machine.released("c1") == .none)
        #expect(machine.counts == (lent: 0, idle: 1, waiting: 0))
    }

    /// A broken connection is not kept: its empty slot goes to the next waiter, who opens a new one.
    @Test func brokenConnectionPassesAnEmptySlot() {
        var machine = TestPoolMachine.started(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        #expect(machine.released(nil) == .handOver(nil, to: "w1"))
        #expect(machine.released(nil) == .none)
        #expect(machine.counts == (lent: 0, idle: 0, waiting: 0))
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
    }

    /// A newcomer does not jump the queue, even when a slot looks free.
    @Test func newcomersQueueBehindWaiters() {
        var machine = TestPoolMachine.started(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .mustWait)
    }

    /// A waiter that times out is failed once; one already served is left alone.
    @Test func abandonedWaiters() {
        var machine = TestPoolMachine.started(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        #expect(machine.leaseRequested(id: 2, waiter: "w2") == .queued)
        #expect(machine.abandoned(id: 1) == .fail("w1"))
        #expect(machine.abandoned(id: 1) == .none)
        #expect(machine.released("c1") == .handOver("c1", to: "w2"))
        #expect(machine.abandoned(id: 2) == .none)
    }

    /// Shutdown closes idle connections and fails waiters; later releases close and new requests fail.
    @Test func shutdown() {
        var machine = TestPoolMachine.started(maximumConnections: 2)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.released("idle") == .none)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease("idle"))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        #expect(machine.released("back") == .handOver("back", to: "w1"))
        #expect(machine.released("idle") == .none)
        let shutdown = machine.shutdown()
        #expect(shutdown.close == ["idle"])
        #expect(shutdown.fail.isEmpty)
        #expect(machine.released("back") == .close("back"))
        #expect(machine.leaseRequested(id: 2, waiter: "late") == .fail("late"))
        #expect(machine.counts == (lent: 0, idle: 0, waiting: 0))
    }

    /// Waiters still queued at shutdown are failed.
    @Test func shutdownFailsWaiters() {
        var machine = TestPoolMachine.started(maximumConnections: 1)
        #expect(machine.leaseRequested(id: 0, waiter: nil) == .lease(nil))
        #expect(machine.leaseRequested(id: 1, waiter: "w1") == .queued)
        let shutdown = machine.shutdown()
        #expect(shutdown.fail == ["w1"])
        #expect(machine.released(nil) == .none)
    }
}

extension TestPoolMachine {
    static func started(maximumConnections: Int) -> Self {
        var machine = Self(maximumConnections: maximumConnections)
        #expect(machine.started().isEmpty)
        return machine
    }
}

extension TestPoolMachine.LeaseAction: Equatable {
    package static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.lease(let a), .lease(let b)): a == b
        case (.mustWait, .mustWait), (.queued, .queued): true
        case (.fail(let a), .fail(let b)): a == b
        default: false
        }
    }
}

extension TestPoolMachine.ReleaseAction: Equatable {
    package static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.handOver(let a, let x), .handOver(let b, let y)): a == b && x == y
        case (.none, .none): true
        case (.close(let a), .close(let b)): a == b
        default: false
        }
    }
}

extension TestPoolMachine.AbandonAction: Equatable {
    package static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.fail(let a), .fail(let b)): a == b
        case (.none, .none): true
        default: false
        }
    }
}
