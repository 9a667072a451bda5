import DequeModule

/// The pool's bookkeeping as a value: which connections are idle, how many slots are lent out, who
/// is waiting. The ``ConnectionPool`` feeds it events under its lock and performs the returned
/// actions after leaving the lock.
///
/// A *slot* is the right to hold one connection; at most `maximumConnections` are lent at once. A
/// lent slot may come with an idle connection, or empty, in which case its holder opens one.
/// Generic over the connection and waiter types so tests drive it without IO.
package struct PoolStateMachine<Connection, Waiter> {
    /// The result of asking for a slot.
    package enum LeaseAction {
        /// Use this slot now: with an idle connection, or `nil` to open a new one.
        case lease(Connection?)
        /// No slot is free; wait with a waiter (returned only when none was given).
        case mustWait
        /// The waiter was queued; it is resumed by a later action.
        case queued
        /// The pool is shut down.
        case fail(Waiter?)
    }

    /// The result of giving a slot back.
    package enum ReleaseAction {
        /// Hand the slot (with the connection, or `nil` to open a new one) to this waiter.
        case handOver(Connection?, to: Waiter)
        /// Nothing to do: the connection went idle, or the empty slot was freed.
        case none
        /// The pool is shut down: close this connection.
        case close(Connection)
    }

    /// The result of a waiter giving up (timeout or cancellation).
    package enum AbandonAction {
        /// Fail this waiter.
        case fail(Waiter)
        /// The waiter was served already; its lease is on the way.
        case none
    }

    /// What shutting down requires.
    package struct ShutdownAction {
        /// Idle connections to close.
        package var close: [Connection]
        /// Waiters to fail.
        package var fail: [Waiter]
    }

    package let maximumConnections: Int
    private var idle: [Connection] = []
    private var waiters: Deque<(id: Int, waiter: Waiter)> = []
    private var lent = 0
    /// Until the pool runs, requests queue (and time out if it never does).
    private var isStarted = false
    private var isShutDown = false

    package init(maximumConnections: Int) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.maximumConnections = maximumConnections
    }

    /// Connections lent out, idle, and callers waiting.
    package var counts: (lent: Int, idle: Int, waiting: Int) { (self.lent, self.idle.count, self.waiters.count) }

    /// The pool starts running: waiters queued before now get empty slots, up to the maximum.
    package mutating func started() -> [Waiter] {
        precondition(!self.isStarted, "started twice")
        self.isStarted = true
        var served: [Waiter] = []
        while self.lent < self.maximumConnections, let next = self.waiters.popFirst() {
            self.lent += 1
            served.append(next.waiter)
        }
        return served
    }

    /// A caller wants a slot. Without a waiter it learns whether it must wait; with one it is queued.
    package mutating func leaseRequested(id: Int, waiter: Waiter?) -> LeaseAction {
        guard !self.isShutDown else { return .fail(waiter) }
        // Only the caller that reached the queue first may take a slot that frees up; a newcomer
        // jumps no queue.
        if self.isStarted && self.waiters.isEmpty {
            if let connection = self.idle.popLast() {
                self.lent += 1
                return .lease(connection)
            }
            if self.lent < self.maximumConnections {
                self.lent += 1
                return .lease(nil)
            }
        }
        guard let waiter else { return .mustWait }
        self.waiters.append((id, waiter))
        return .queued
    }

    /// A holder gives its slot back, with its connection when that is still good.
    package mutating func released(_ connection: Connection?) -> ReleaseAction {
        precondition(self.lent > 0, "released a slot that was never lent")
        if self.isShutDown {
            self.lent -= 1
            return connection.map { .close($0) } ?? .none
        }
        if let next = self.waiters.popFirst() {
            return .handOver(connection, to: next.waiter)
        }
        self.lent -= 1
        if let connection { self.idle.append(connection) }
        return .none
    }

    /// A queued waiter stops waiting (its timeout passed, or its task was cancelled).
    package mutating func abandoned(id: Int) -> AbandonAction {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return .none }
        return .fail(self.waiters.remove(at: index).waiter)
    }

    /// The pool is shutting down: idle connections close, waiters fail, lent ones close on release.
    package mutating func shutdown() -> ShutdownAction {
        self.isShutDown = true
        defer {
            self.idle.removeAll()
            self.waiters.removeAll()
        }
        return ShutdownAction(close: self.idle, fail: self.waiters.map(\.waiter))
    }
}
