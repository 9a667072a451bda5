public import Logging
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A bounded pool of connections, and the threads their blocking libpq calls run on.
///
/// ```swift
/// let pool = ConnectionPool(configuration: .init(connection: try .init(url)), logger: logger)
/// // run it in a ServiceGroup (or a task) before using it
/// let status = try await pool.withConnection { connection in
///     try connection.query("SELECT status FROM orders WHERE id = $1", [id]).first?.decode(String.self, at: 0)
/// }
/// ```
///
/// The closures given to ``withConnection(_:)`` and ``withTransaction(isolation:_:)`` are
/// synchronous and run on the pool's own threads, one per connection. That keeps every blocking
/// libpq call off Swift's cooperative pool and off NIO's event loops, makes a whole transaction one
/// thread hop, and makes it impossible to hold a connection across an unrelated `await` (such as a
/// slow client's socket), which is how pools usually starve.
///
/// Connections open on demand, up to ``Configuration/maximumConnections``. A caller that finds none
/// free waits up to ``Configuration/acquireTimeout`` and then gets ``PostgresError/Kind/poolExhausted``.
/// Before a connection is lent its socket is checked; a connection the server closed while it sat
/// idle (restart, `pg_terminate_backend`) is replaced by a fresh one. A connection that breaks
/// in use, or is returned with a transaction open, is closed instead of reused.
///
/// - Important: The pool lends connections only while ``run()`` is running. Callers that come
///   before it starts wait for it, within their acquire timeout.
public final class ConnectionPool: Service, Sendable {
    public struct Configuration: Sendable {
        var connection: ConnectionConfiguration
        /// At most this many connections are open at once. Defaults to 10.
        var maximumConnections: Int
        /// How long a caller waits for a free connection before giving up. Defaults to 5 seconds.
        var acquireTimeout: Duration

        public init(
            connection: ConnectionConfiguration,
            maximumConnections: Int = 10,
            acquireTimeout: Duration = .seconds(5)
        ) {
            self.connection = connection
            self.maximumConnections = maximumConnections
            self.acquireTimeout = acquireTimeout
        }
    }

    /// Connections in use, idle, and callers waiting, for metrics.
    public struct Statistics: Sendable, Hashable {
        public var inUse: Int
        public var idle: Int
        public var waiting: Int
    }

    private typealias Waiter = CheckedContinuation<PooledConnection?, any Error>

    private struct State: ~Copyable {
        var machine: PoolStateMachine<PooledConnection, Waiter>
        var nextWaiterID = 0
        var isRunning = false
    }

    let configuration: Configuration
    private let logger: Logger
    private let threadPool: NIOThreadPool
    private let state: Mutex<State>

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.maximumConnections)
        self.state = Mutex(State(machine: PoolStateMachine(maximumConnections: configuration.maximumConnections)))
    }

    public var statistics: Statistics {
        let counts = self.state.withLock { $0.machine.counts }
        return Statistics(inUse: counts.lent, idle: counts.idle, waiting: counts.waiting)
    }

    /// Lends connections until graceful shutdown or cancellation, then closes them: idle ones at
    /// once, lent ones as they come back. Waiting callers fail with ``PostgresError/Kind/poolClosed``.
    public func run() async throws {
        let alreadyRunning = self.state.withLock { state in
            defer { state.isRunning = true }
            return state.isRunning
        }
        precondition(!alreadyRunning, "ConnectionPool.run() must be called only once")
        self.threadPool.start()
        for waiter in self.state.withLock({ $0.machine.started() }) {
            waiter.resume(returning: nil)
        }
        // Returns at graceful shutdown, or throws at cancellation; either way the pool closes.
        try? await gracefulShutdown()
        let shutdown = self.state.withLock { $0.machine.shutdown() }
        for waiter in shutdown.fail { waiter.resume(throwing: Self.closedError) }
        let idle = shutdown.close
        if !idle.isEmpty {
            _ = try? await self.threadPool.runIfActive {
                for connection in idle { connection.connection.close() }
            }
        }
        // Waits for statements already running; their connections close as they are released.
        try await self.threadPool.shutdownGracefully()
        self.logger.debug("connection pool closed")
    }

    /// Runs `body` with a connection of its own, on one of the pool's threads.
    ///
    /// - Throws: whatever `body` throws; ``PostgresError/Kind/poolExhausted`` when no connection
    ///   came free within the acquire timeout; ``PostgresError/Kind/connectionFailed`` when a new
    ///   connection could not be opened.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let leased = try await self.lease()
        let configuration = self.configuration.connection
        let outcome: (Result<T, any Error>, PooledConnection?)
        do {
            outcome = try await self.threadPool.runIfActive {
                let connection: Connection
                do {
                    connection = try Self.ready(leased?.connection, configuration: configuration)
                } catch {
                    return (.failure(error), nil)
                }
                let result = Result { try body(connection) }
                guard connection.isReusable else {
                    connection.close()
                    return (result, nil)
                }
                return (result, PooledConnection(connection))
            }
        } catch {
            // The thread pool skipped the work: the caller was cancelled before it ran, or the pool
            // shut down with it queued (which NIO also reports as a cancellation).
            self.release(leased)
            throw Task.isCancelled ? error : Self.closedError
        }
        self.release(outcome.1)
        return try outcome.0.get()
    }

    /// Runs `body` in a transaction on a connection of its own (see ``Connection/transaction(isolation:_:)``).
    public func withTransaction<T: Sendable>(
        isolation: Connection.IsolationLevel? = nil,
        _ body: @escaping @Sendable (Connection) throws -> T
    ) async throws -> T {
        try await self.withConnection { connection in
            try connection.transaction(isolation: isolation, body)
        }
    }

    // MARK: Leasing

    /// A slot, with an idle connection or `nil` when the holder must open one.
    private func lease() async throws -> PooledConnection? {
        switch self.state.withLock({ $0.machine.leaseRequested(id: 0, waiter: nil) }) {
        case .lease(let connection):
            return connection
        case .fail:
            throw Self.closedError
        case .mustWait, .queued:
            return try await self.waitForLease()
        }
    }

    private func waitForLease() async throws -> PooledConnection? {
        let id = self.state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        let timeout = self.configuration.acquireTimeout
        let deadline = ContinuousClock.now + timeout
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                self.abandon(id: id, error: Self.exhaustedError(after: timeout))
            }
            defer { group.cancelAll() }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (waiter: Waiter) in
                    let action = self.state.withLock { $0.machine.leaseRequested(id: id, waiter: waiter) }
                    switch action {
                    case .lease(let connection):
                        waiter.resume(returning: connection)
                    case .fail:
                        waiter.resume(throwing: Self.closedError)
                    case .queued:
                        // The cancellation handler or the timer may have fired before the waiter
                        // was queued, when there was nothing to abandon yet; check both again now
                        // that it is. (The timer fires at the deadline or later, so a waiter queued
                        // before the deadline is always found by it.)
                        if Task.isCancelled {
                            self.abandon(id: id, error: CancellationError())
                        } else if ContinuousClock.now >= deadline {
                            self.abandon(id: id, error: Self.exhaustedError(after: timeout))
                        }
                    case .mustWait:
                        preconditionFailure("a request with a waiter is queued, never told to wait")
                    }
                }
            } onCancel: {
                self.abandon(id: id, error: CancellationError())
            }
        }
    }

    private func abandon(id: Int, error: any Error) {
        switch self.state.withLock({ $0.machine.abandoned(id: id) }) {
        case .fail(let waiter): waiter.resume(throwing: error)
        case .none: break
        }
    }

    private func release(_ connection: PooledConnection?) {
        switch self.state.withLock({ $0.machine.released(connection) }) {
        case .handOver(let connection, let waiter):
            waiter.resume(returning: connection)
        case .close(let connection):
            // The pool is shut down and its threads may be gone. PQfinish only queues a Terminate
            // message on the socket and closes it; it does not wait for the server.
            connection.connection.close()
        case .none:
            break
        }
    }

    /// The lent connection if it is still alive, otherwise a new one. Runs on a pool thread.
    private static func ready(
        _ connection: Connection?,
        configuration: ConnectionConfiguration
    ) throws(PostgresError) -> Connection {
        if let connection {
            if connection.isAliveWhenIdle() { return connection }
            connection.close()
        }
        return try Connection.connect(configuration)
    }

    private static let closedError = PostgresError(kind: .poolClosed, message: "the connection pool is not running")

    private static func exhaustedError(after timeout: Duration) -> PostgresError {
        PostgresError(
            kind: .poolExhausted,
            message: "no database connection became free within \(timeout.formatted)"
        )
    }
}

/// A connection passed between the pool's threads under a lease.
///
/// `@unchecked Sendable`: the pool guarantees that only the holder of a lease touches the connection,
/// and the lease's hand-over (a lock, a continuation or the thread pool's queue) orders the accesses.
private struct PooledConnection: @unchecked Sendable {
    let connection: Connection

    init(_ connection: Connection) { self.connection = connection }
}
