import Postgres
import TestSupport
import Testing

@Suite("Batches and two-round-trip transactions against a real PostgreSQL")
struct BatchTests {
    private static func count(_ connection: Connection) throws -> Int {
        try connection.query("SELECT count(*) FROM items").first!.decode(Int.self, at: 0)
    }

    private static func insert(_ name: String) -> Batch<Void> {
        Batch([Statement("INSERT INTO items VALUES ($1)", [name])])
    }

    /// A composed batch reads each part from its own results, in the order sent.
    @Test func composedBatchReadsEachPartInOrder() async throws {
        let database = try await TestDatabase.create()
        let (value, count) = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            let one = Batch(Statement("SELECT $1::int + 1", [Int32(1)])) { try $0.first!.decode(Int.self, at: 0) }
            let names = Batch(Statement("INSERT INTO items VALUES ($1), ($2) RETURNING name", ["a", "b"])) {
                try $0.map { try $0.decode(String.self, at: 0) }
            }
            let value = try connection.run(one.and(names).and(.constant("kept")).map { "\($0.0)\($0.1)\($1)" })
            return (value, try Self.count(connection))
        }
        #expect(value == #"2["a", "b"]kept"#)
        #expect(count == 2)
    }

    /// A failing statement throws its own error (with its constraint), the statements after it are
    /// skipped, the batch outside a transaction is one implicit transaction, and the connection
    /// serves the next statement.
    @Test func failureSkipsTheRestAndKeepsTheConnection() async throws {
        let database = try await TestDatabase.create()
        let (error, names) = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            let error = try #require(throws: PostgresError.self) {
                try connection.run(Self.insert("a").and(Self.insert("a")).and(Self.insert("after")))
            }
            let names = try connection.query("SELECT name FROM items ORDER BY name").map {
                try $0.decode(String.self, at: 0)
            }
            return (error, names)
        }
        #expect(error.sqlState == .uniqueViolation)
        #expect(error.constraint == "items_name_key")
        // Up to its Sync the pipeline was one implicit transaction: the first insert is gone too.
        #expect(names == [])
    }

    /// Opening reads, the decision sees them, and the writes commit with COMMIT.
    @Test func twoRoundTripTransactionCommits() async throws {
        let database = try await TestDatabase.create()
        let (value, count) = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            try connection.execute("INSERT INTO items VALUES ('seed')")
            let value = try connection.transaction(
                isolation: .readCommitted,
                opening: Batch(Statement("SELECT name FROM items FOR UPDATE")) { $0.count }
            ) { seen in
                Self.insert("second").and(Self.insert("third")).map { _ in seen }
            }
            return (value, try Self.count(connection))
        }
        #expect(value == 1)
        #expect(count == 3)
    }

    /// With nothing to read first, the transaction still commits (in one round trip).
    @Test func transactionWithoutOpeningReadsCommits() async throws {
        let database = try await TestDatabase.create()
        let count = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            try connection.transaction(opening: .constant(())) { Self.insert("only") }
            return try Self.count(connection)
        }
        #expect(count == 1)
    }

    /// A failing write rolls back the whole transaction, the writes before it in the same batch
    /// included; so does a decision that throws.
    @Test func failuresRollBackEverything() async throws {
        struct Refused: Error {}
        let database = try await TestDatabase.create()
        let (error, count) = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            let error = try #require(throws: PostgresError.self) {
                try connection.transaction(opening: Self.insert("opened")) {
                    Self.insert("written").and(Self.insert("written")).and(Self.insert("after"))
                }
            }
            #expect(throws: Refused.self) {
                try connection.transaction(opening: Self.insert("opened")) { () throws -> Batch<Void> in
                    throw Refused()
                }
            }
            // The connection is idle again and serves a plain statement.
            return (error, try Self.count(connection))
        }
        #expect(error.sqlState == .uniqueViolation)
        #expect(count == 0)
    }
}
