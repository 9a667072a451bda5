import Logging
import Postgres
import TestSupport
import Testing

@Suite("Migrator against a real PostgreSQL")
struct MigratorTests {
    private let logger = Logger(label: "test")

    private let first = Migration(version: 1, name: "create_things", sql: "CREATE TABLE things (id int PRIMARY KEY);")
    private let second = Migration(
        version: 2,
        name: "add_name",
        sql: "ALTER TABLE things ADD COLUMN name text;\nINSERT INTO things VALUES (1, 'one');"
    )

    private func appliedVersions(_ database: TestDatabase) async throws -> [Int] {
        try await database.withConnection { connection in
            try connection.query("SELECT version FROM schema_migrations ORDER BY version").map {
                try $0.decode(Int.self, at: 0)
            }
        }
    }

    /// Running twice applies each migration once; the second run does nothing.
    @Test func isIdempotent() async throws {
        let database = try await TestDatabase.create()
        let migrator = Migrator(migrations: [self.second, self.first], logger: self.logger)
        #expect(try await migrator.migrate(database.configuration).map(\.version) == [1, 2])
        #expect(try await migrator.migrate(database.configuration).isEmpty)
        #expect(try await self.appliedVersions(database) == [1, 2])
    }

    /// Migrators racing on one database serialise: every file is applied exactly once.
    @Test func racingMigratorsApplyEachFileOnce() async throws {
        let database = try await TestDatabase.create()
        try await self.race(on: database, through: database.configuration)
    }

    /// The same through PgBouncer in transaction mode, where one client connection's transactions
    /// land on different server sessions: a session advisory lock would stay with whichever
    /// session took it, so the next migrator would wait for it forever, or, landing on that same
    /// session, run beside the first.
    @Test func racingMigratorsThroughATransactionPoolerApplyEachFileOnce() async throws {
        let database = try await TestDatabase.create()
        try await TestPgBouncer.run(upstreamURL: database.url) { bouncer in
            try await self.race(on: database, through: try .init(bouncer.url(for: database.url)))
        }
    }

    private func race(on database: TestDatabase, through configuration: ConnectionConfiguration) async throws {
        let migrations =
            [self.first, self.second]
            + (3...8).map { Migration(version: $0, name: "table_\($0)", sql: "CREATE TABLE t\($0) (x int);") }
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await Migrator(migrations: migrations, logger: self.logger).migrate(configuration).count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(applied == migrations.count)
        #expect(try await self.appliedVersions(database) == Array(1...8))
    }

    /// An applied migration whose file changed stops the migrator with an error naming it.
    @Test func editedAppliedMigrationIsRefused() async throws {
        let database = try await TestDatabase.create()
        _ = try await Migrator(migrations: [self.first], logger: self.logger).migrate(database.configuration)
        let edited = Migration(version: 1, name: "create_things", sql: "CREATE TABLE things (id bigint PRIMARY KEY);")
        let error = try await #require(throws: PostgresError.self) {
            try await Migrator(migrations: [edited, self.second], logger: self.logger).migrate(database.configuration)
        }
        #expect(error.kind == .migration)
        #expect(error.message.contains("0001_create_things was edited"))
        #expect(try await self.appliedVersions(database) == [1])
    }

    /// A new file numbered below the newest applied one is refused rather than applied out of order.
    @Test func migrationAddedBelowTheNewestIsRefused() async throws {
        let database = try await TestDatabase.create()
        let third = Migration(version: 3, name: "later", sql: "CREATE TABLE later (x int);")
        _ = try await Migrator(migrations: [self.first, third], logger: self.logger).migrate(database.configuration)
        let error = try await #require(throws: PostgresError.self) {
            try await Migrator(migrations: [self.first, self.second, third], logger: self.logger).migrate(
                database.configuration
            )
        }
        #expect(error.message.contains("0002_add_name is not applied but 0003 is"))
    }

    /// A failing migration rolls back entirely and is not recorded; earlier ones stay applied.
    @Test func failingMigrationLeavesNoTrace() async throws {
        let database = try await TestDatabase.create()
        let broken = Migration(
            version: 2,
            name: "broken",
            sql: "CREATE TABLE half (x int);\nSELECT * FROM missing_table;"
        )
        let error = try await #require(throws: PostgresError.self) {
            try await Migrator(migrations: [self.first, broken], logger: self.logger).migrate(database.configuration)
        }
        #expect(error.sqlState == .undefinedTable)
        #expect(try await self.appliedVersions(database) == [1])
        let half = try await database.withConnection {
            try $0.query("SELECT to_regclass('half') IS NULL").first!.decode(Bool.self, at: 0)
        }
        #expect(half)
    }

    /// The repository's files load in order, with stable checksums.
    @Test func loadsTheRepositoryMigrations() throws {
        let migrations = try Migration.load(from: TestEnvironment.migrationsDirectory)
        #expect(migrations.first?.version == 1)
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
        #expect(migrations.allSatisfy { $0.checksum.count == 64 })
        #expect(
            Migration(version: 1, name: "a", sql: "x").checksum == Migration(version: 1, name: "a", sql: "x").checksum
        )
    }
}
