import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Connection against a real PostgreSQL")
struct ConnectionTests {
    /// Quotes, injection strings, NULL, unicode, bytea and integers survive a write and a read unchanged.
    @Test func parametersRoundTripThroughATable() async throws {
        let database = try await TestDatabase.create()
        let texts = [
            "O'Reilly said \"hi\"", "'; DROP TABLE samples; --", "支付成功 ✅ naïve café 🙂", "", "back\\slash\ttab\nnewline",
        ]
        let bytes = (0...255).map(UInt8.init) + [0, 0]
        let rows = try await database.withConnection { connection in
            try connection.execute(
                "CREATE TABLE samples (id int PRIMARY KEY, label text, payload bytea, amount bigint)"
            )
            for (index, text) in texts.enumerated() {
                try connection.execute(
                    "INSERT INTO samples (id, label, payload, amount) VALUES ($1, $2, $3, $4)",
                    [Int32(index), text, bytes, Int64.min + Int64(index)]
                )
            }
            try connection.execute(
                "INSERT INTO samples (id, label, payload, amount) VALUES ($1, $2, $3, $4)",
                [Int32(99), String?.none, [UInt8]?.none, Int?.none]
            )
            return try connection.query("SELECT id, label, payload, amount FROM samples ORDER BY id")
        }
        #expect(rows.count == texts.count + 1)
        for (index, text) in texts.enumerated() {
            #expect(try rows[index].decode(String.self, column: "label") == text)
            #expect(try rows[index].decode([UInt8].self, column: "payload") == bytes)
            #expect(try rows[index].decode(Int64.self, column: "amount") == Int64.min + Int64(index))
        }
        let nulls = rows[texts.count]
        #expect(try nulls.decode(String?.self, column: "label") == nil)
        #expect(try nulls.decode([UInt8]?.self, column: "payload") == nil)
        #expect(try nulls.decode(Int?.self, column: "amount") == nil)
        #expect(throws: PostgresError.self) { try nulls.decode(String.self, column: "label") }
        #expect(
            try await database.withConnection {
                try $0.query("SELECT count(*) FROM samples").first!.decode(Int.self, at: 0)
            } == 6
        )
    }

    /// Booleans, doubles, UUIDs, timestamps and jsonb round-trip, typed as the server sees them.
    @Test func typedValuesRoundTrip() async throws {
        let database = try await TestDatabase.create()
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let row = try await database.withConnection { connection in
            try connection.query(
                "SELECT $1::bool, $2::float8, $3::uuid, $4::timestamptz, $5::jsonb, $6::int4, $7::uuid::text",
                [true, 2.5, id, when, #"{"a": [1, "二"]}"#, Int32(-7), id]
            ).first!
        }
        #expect(try row.decode(Bool.self, at: 0) == true)
        #expect(try row.decode(Double.self, at: 1) == 2.5)
        #expect(try row.decode(UUID.self, at: 2) == id)
        #expect(abs(try row.decode(Date.self, at: 3).timeIntervalSince(when)) < 0.000_001)
        #expect(try row.decode(String.self, at: 4) == #"{"a": [1, "二"]}"#)
        #expect(try row.decode(Int.self, at: 5) == -7)
        #expect(try row.decode(String.self, at: 6) == id.uuidString.lowercased())
    }

    /// Reading a column as the wrong type is a decoding error naming the column, not a crash.
    @Test func decodingTheWrongTypeNamesTheColumn() async throws {
        let database = try await TestDatabase.create()
        let row = try await database.withConnection { try $0.query("SELECT 'x'::text AS label").first! }
        let error = try #require(throws: PostgresError.self) { try row.decode(Int.self, column: "label") }
        #expect(error.kind == .decoding)
        #expect(error.message.contains("label"))
        #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "missing") }
    }

    /// A text parameter holding NUL is refused before it is sent, and the connection stays usable.
    @Test func textWithNULByteIsRefused() async throws {
        let database = try await TestDatabase.create()
        try await database.withConnection { connection in
            let error = try #require(throws: PostgresError.self) {
                try connection.query("SELECT $1::text", ["a\u{0}b"])
            }
            #expect(error.kind == .invalidParameter)
            #expect(try connection.query("SELECT 1").count == 1)
        }
    }

    /// A unique violation surfaces as the named SQLSTATE with its constraint.
    @Test func uniqueViolationCarriesSQLState() async throws {
        let database = try await TestDatabase.create()
        let error = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text CONSTRAINT items_name_key UNIQUE)")
            try connection.execute("INSERT INTO items VALUES ($1)", ["a"])
            return try #require(throws: PostgresError.self) {
                try connection.execute("INSERT INTO items VALUES ($1)", ["a"])
            }
        }
        #expect(error.kind == .server)
        #expect(error.sqlState == .uniqueViolation)
        #expect(error.constraint == "items_name_key")
        #expect(!error.isTransient)
    }

    /// A statement cut off by `statement_timeout` (a deployment may set one) is transient: the
    /// request gets 503 and may be retried, not a 500.
    @Test func statementTimeoutIsTransient() async throws {
        let database = try await TestDatabase.create()
        let error = try await database.withConnection { connection in
            try connection.execute("SET statement_timeout = 50")
            return try #require(throws: PostgresError.self) { try connection.execute("SELECT pg_sleep(2)") }
        }
        #expect(error.sqlState == .queryCanceled)
        #expect(error.isTransient)
    }

    /// The service's connections speak UTF-8 whatever the database's encoding, and whatever the
    /// connection string asks: on a LATIN1 database, text comes back as the UTF-8 it was sent in.
    @Test func clientEncodingIsUTF8() async throws {
        let shared = try TestEnvironment.databaseURL()
        let name = "test_latin1_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await TestThreads.withConnection(try ConnectionConfiguration(shared)) { connection in
            try connection.execute(
                "CREATE DATABASE \(name) ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        }
        var components = URLComponents(string: shared)!
        components.path = "/" + name
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "client_encoding", value: "LATIN1")]
        let database = try TestDatabase.existing(url: components.string!)
        let (encoding, text) = try await database.withConnection { connection in
            let row = try connection.query("SELECT current_setting('client_encoding'), $1::text", ["café"]).first!
            return (try row.decode(String.self, at: 0), try row.decode(String.self, at: 1))
        }
        #expect(encoding == "UTF8")
        #expect(text == "café")
    }

    /// A transaction whose body throws leaves no rows behind.
    @Test func failingTransactionLeavesNoRows() async throws {
        let database = try await TestDatabase.create()
        let count = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            #expect(throws: PostgresError.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO items VALUES ($1)", ["first"])
                    try connection.execute("INSERT INTO items VALUES ($1)", ["first"])
                }
            }
            return try connection.query("SELECT count(*) FROM items").first!.decode(Int.self, at: 0)
        }
        #expect(count == 0)
    }

    /// An error caught inside a transaction still fails the commit: nothing looks committed that was not.
    @Test func commitAfterCaughtErrorThrows() async throws {
        let database = try await TestDatabase.create()
        let count = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text UNIQUE)")
            let error = try #require(throws: PostgresError.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO items VALUES ($1)", ["kept?"])
                    _ = try? connection.execute("SELECT * FROM no_such_table")
                }
            }
            #expect(error.sqlState == .inFailedTransaction)
            return try connection.query("SELECT count(*) FROM items").first!.decode(Int.self, at: 0)
        }
        #expect(count == 0)
    }

    /// A successful transaction commits, and its value comes back.
    @Test func transactionCommits() async throws {
        let database = try await TestDatabase.create()
        let count = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE items (name text)")
            let inserted = try connection.transaction(isolation: .serializable) { connection in
                try connection.execute("INSERT INTO items VALUES ($1), ($2)", ["a", "b"])
            }
            #expect(inserted == 2)
            return try connection.query("SELECT count(*) FROM items").first!.decode(Int.self, at: 0)
        }
        #expect(count == 2)
    }

    /// libpq parses the strings: a bad one is refused with its message; an unreachable server fails clearly.
    @Test func badConnectionStringsAndUnreachableServers() async throws {
        let invalid = try #require(throws: PostgresError.self) {
            try ConnectionConfiguration("postgres://host:notaport/db")
        }
        #expect(invalid.kind == .invalidConnectionString)
        #expect(throws: PostgresError.self) { try ConnectionConfiguration("host=a port") }
        let unreachable = try ConnectionConfiguration("postgres://postgres@127.0.0.1:1/paynotify?connect_timeout=2")
        let error = try await #require(throws: PostgresError.self) {
            try await TestThreads.withConnection(unreachable) { _ in }
        }
        #expect(error.kind == .connectionFailed)
        #expect(error.message.contains("127.0.0.1"))
        #expect(error.isTransient)
    }

    /// A multi-host string is libpq's to follow: the first host is down, the second answers.
    @Test func multiHostStringsWork() async throws {
        let url = try TestEnvironment.databaseURL()
        let port = try #require(URLComponents(string: url)?.port)
        let configuration = try ConnectionConfiguration(
            "host=127.0.0.1,127.0.0.1 port=1,\(port) user=postgres dbname=paynotify target_session_attrs=read-write"
        )
        let answer = try await TestThreads.withConnection(configuration) {
            try $0.query("SELECT 42").first!.decode(Int.self, at: 0)
        }
        #expect(answer == 42)
    }

    /// The description of a configuration never shows the password.
    @Test func descriptionHidesThePassword() throws {
        let configuration = try ConnectionConfiguration(
            "postgres://payer:s3cret-pw@db.example:5432/pay?sslmode=require"
        )
        #expect(!configuration.description.contains("s3cret-pw"))
        #expect(configuration.description.contains("host=db.example"))
        #expect(configuration.description.contains("sslmode=require"))
    }

    /// Statements are prepared on a direct connection, and run unnamed through PgBouncer in
    /// transaction mode, where the next transaction may find another session: `auto` tells the two
    /// apart, and many transactions on several connections through the pooler all succeed.
    @Test func automaticPreparedStatementsFollowWhetherAPoolerIsBetween() async throws {
        let database = try await TestDatabase.create()
        try await database.withConnection { try $0.execute("CREATE TABLE counted (n int)") }
        #expect(try await database.withConnection { $0.preparesStatements })
        try await TestPgBouncer.run(upstreamURL: database.url) { bouncer in
            let pooled = try ConnectionConfiguration(bouncer.url(for: database.url))
            #expect(try await TestThreads.withConnection(pooled) { !$0.preparesStatements })
            var forced = pooled
            forced.preparedStatements = .on
            #expect(try await TestThreads.withConnection(forced) { $0.preparesStatements })
            var off = try ConnectionConfiguration(database.url)
            off.preparedStatements = .off
            #expect(try await TestThreads.withConnection(off) { !$0.preparesStatements })

            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        try await TestThreads.withConnection(pooled) { connection in
                            for round in 0..<50 {
                                try connection.transaction { connection in
                                    try connection.execute("INSERT INTO counted VALUES ($1)", [worker * 100 + round])
                                    _ = try connection.query("SELECT count(*) FROM counted WHERE n >= $1", [0])
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let count = try await database.withConnection {
            try $0.query("SELECT count(*) FROM counted").first!.decode(Int.self, at: 0)
        }
        #expect(count == 200)
    }

    /// A write refused because the server is read-only (a standby, or a primary being demoted in a
    /// failover) is transient: the service answers 503 and the retry reaches the new primary.
    @Test func writesRefusedByAReadOnlyServerAreTransient() async throws {
        let database = try await TestDatabase.create()
        let error = try await database.withConnection { connection in
            try connection.execute("CREATE TABLE written (n int)")
            try connection.execute("SET default_transaction_read_only = on")
            do {
                try connection.execute("INSERT INTO written VALUES (1)")
                return PostgresError?.none
            } catch let error as PostgresError {
                return error
            }
        }
        #expect(error?.sqlState?.rawValue == "25006")
        #expect(error?.isTransient == true)
    }
}
