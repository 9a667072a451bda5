import Logging
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("ConnectionPool against a real PostgreSQL")
struct ConnectionPoolTests {
    private func makePool(
        _ database: TestDatabase,
        maximumConnections: Int = 2,
        acquireTimeout: Duration = .seconds(5)
    ) -> ConnectionPool {
        ConnectionPool(
            configuration: .init(
                connection: database.configuration,
                maximumConnections: maximumConnections,
                acquireTimeout: acquireTimeout
            ),
            logger: Logger(label: "test")
        )
    }

    /// With every connection busy, a caller gets the exhaustion error once the acquire timeout passes.
    @Test func exhaustionFailsClearlyAfterTheWait() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database, maximumConnections: 1, acquireTimeout: .milliseconds(300))
        try await withRunning(pool) { pool in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The holder keeps it 6 s, far beyond the 300 ms timeout, so a pause of the machine
                // (the start of the test run) cannot blur the two.
                group.addTask { _ = try await pool.withConnection { try $0.execute("SELECT pg_sleep(6)") } }
                try await eventually("the only connection to be busy") { pool.statistics.inUse == 1 }
                let started = ContinuousClock.now
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.withConnection { _ in }
                }
                let waited = ContinuousClock.now - started
                #expect(error.kind == .poolExhausted)
                #expect(error.message.contains("300 ms"))
                #expect(waited >= .milliseconds(300))
                #expect(
                    waited < .milliseconds(5_500),
                    "the caller gave up at its timeout, not when the holder finished"
                )
                try await group.waitForAll()
            }
        }
    }

    /// Concurrent callers are served, never holding more connections than the maximum.
    @Test func concurrentCallersShareABoundedPool() async throws {
        let applicationName = "pool-bound-\(UInt32.random(in: 0...UInt32.max))"
        let database = try await TestDatabase.create(applicationName: applicationName)
        // What is checked is the bound, not the speed: on a loaded machine (the whole suite in
        // parallel on two cores) thirty callers through three connections once waited past 5 s.
        let pool = self.makePool(database, maximumConnections: 3, acquireTimeout: .seconds(60))
        let peak = try await withRunning(pool) { pool in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<30 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            try connection.execute("SELECT pg_sleep(0.01)")
                            return try connection.query(
                                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                [applicationName]
                            ).first!.decode(Int.self, at: 0)
                        }
                    }
                }
                return try await group.reduce(0) { max($0, $1) }
            }
        }
        #expect(peak >= 1 && peak <= 3)
    }

    /// A pooled connection whose backend is terminated while idle is replaced; the next call succeeds.
    @Test func terminatedIdleConnectionIsReplaced() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database, maximumConnections: 1)
        try await withRunning(pool) { pool in
            let first = try await pool.withConnection { $0.backendPID }
            let terminated = try await database.withConnection { connection in
                try connection.query("SELECT pg_terminate_backend($1, 5000)", [first]).first!.decode(Bool.self, at: 0)
            }
            #expect(terminated)
            let second = try await pool.withConnection { connection in
                (connection.backendPID, try connection.query("SELECT 1").count)
            }
            #expect(second.0 != first)
            #expect(second.1 == 1)
        }
    }

    /// A connection that breaks in use fails that call only; the next call gets a fresh connection.
    @Test func connectionBrokenInUseIsDiscarded() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database, maximumConnections: 1)
        try await withRunning(pool) { pool in
            let error = try await #require(throws: PostgresError.self) {
                try await pool.withConnection { try $0.execute("SELECT pg_terminate_backend(pg_backend_pid())") }
            }
            #expect(error.isTransient)
            #expect(try await pool.withConnection { try $0.query("SELECT 1").count } == 1)
            #expect(pool.statistics.inUse == 0 && pool.statistics.idle == 1)
        }
    }

    /// A connection handed back inside an open transaction is closed, never lent to the next caller.
    @Test func connectionLeftInATransactionIsNotReused() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database, maximumConnections: 1)
        try await withRunning(pool) { pool in
            let first = try await pool.withConnection { connection in
                try connection.execute("BEGIN")
                return connection.backendPID
            }
            let second = try await pool.withConnection { connection in
                try connection.execute("CREATE TABLE t (x int)")
                return connection.backendPID
            }
            #expect(first != second)
        }
    }

    /// withTransaction commits on success and rolls back when the body throws.
    @Test func withTransactionCommitsOrRollsBack() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database)
        try await withRunning(pool) { pool in
            _ = try await pool.withConnection { try $0.execute("CREATE TABLE items (name text)") }
            _ = try await pool.withTransaction { try $0.execute("INSERT INTO items VALUES ($1)", ["kept"]) }
            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                try await pool.withTransaction { connection in
                    try connection.execute("INSERT INTO items VALUES ($1)", ["dropped"])
                    throw Refused()
                }
            }
            let names = try await pool.withConnection { connection in
                try connection.query("SELECT name FROM items").map { try $0.decode(String.self, at: 0) }
            }
            #expect(names == ["kept"])
        }
    }

    /// Once the pool has stopped, callers get the closed error instead of hanging.
    @Test func stoppedPoolRefusesCallers() async throws {
        let database = try await TestDatabase.create()
        let pool = self.makePool(database)
        try await withRunning(pool) { pool in
            _ = try await pool.withConnection { try $0.query("SELECT 1") }
        }
        let error = try await #require(throws: PostgresError.self) { try await pool.withConnection { _ in } }
        #expect(error.kind == .poolClosed)
    }

    /// With the database unreachable, a caller fails fast with the connection error, not a timeout.
    @Test func unreachableDatabaseFailsFast() async throws {
        let pool = ConnectionPool(
            configuration: .init(connection: try ConnectionConfiguration("postgres://postgres@127.0.0.1:1/none")),
            logger: Logger(label: "test")
        )
        try await withRunning(pool) { pool in
            let error = try await #require(throws: PostgresError.self) { try await pool.withConnection { _ in } }
            #expect(error.kind == .connectionFailed)
            #expect(pool.statistics.inUse == 0 && pool.statistics.idle == 0)
        }
    }
}
