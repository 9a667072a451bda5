public import Logging
import NIOPosix

/// Brings a database's schema up to date with a list of ``Migration``s.
///
/// Each pending migration runs in its own transaction together with its row in `schema_migrations`
/// (version, name, checksum, time), so a failing file leaves no trace. Before anything runs, every
/// applied migration is compared with its file: an edited file, or a file added below the newest
/// applied version, stops the migrator with an error naming it, because the schema would no longer
/// match the files.
///
/// Several instances starting together is normal: migrators serialise on a transaction-level
/// advisory lock, and whoever comes second finds the work done.
public struct Migrator: Sendable {
    /// The advisory lock key: the bytes of "paynotif" read as a big-endian integer.
    static let advisoryLockKey: Int64 = 0x7061_796e_6f74_6966

    let migrations: [Migration]
    private let logger: Logger

    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Opens a dedicated connection (off the cooperative pool), migrates, and closes it.
    ///
    /// - Returns: the migrations applied by this call (empty when the schema was up to date).
    public func migrate(_ configuration: ConnectionConfiguration) async throws -> [Migration] {
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection.connect(configuration)
            defer { connection.close() }
            return try self.migrate(on: connection)
        }
    }

    /// Migrates on a connection the caller owns. Blocking.
    ///
    /// Each step is one transaction under a transaction-level advisory lock, which also holds
    /// through a pooler in transaction mode (a session lock would stay with whichever server
    /// session took it): it re-reads what is applied and applies the next pending migration, until
    /// none is left. Instances starting together serialise on the lock; whoever comes second finds
    /// the work done.
    func migrate(on connection: Connection) throws -> [Migration] {
        var applied: [Migration] = []
        while let migration = try connection.transaction({ try self.applyNext(on: $0) }) {
            self.logger.info(
                "applied migration",
                metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]
            )
            applied.append(migration)
        }
        return applied
    }

    /// Applies the next pending migration, if any, in the caller's transaction.
    private func applyNext(on connection: Connection) throws -> Migration? {
        try connection.execute("SELECT pg_advisory_xact_lock($1)", [Self.advisoryLockKey])
        try connection.executeScript(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        let applied = try self.appliedMigrations(on: connection)
        guard let next = try self.pendingMigrations(applied: applied).first else { return nil }
        try connection.executeScript(next.sql)
        try connection.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            [next.version, next.name, next.checksum]
        )
        return next
    }

    private func appliedMigrations(on connection: Connection) throws -> [Int: (name: String, checksum: String)] {
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in try connection.query("SELECT version, name, checksum FROM schema_migrations") {
            applied[try row.decode(Int.self, at: 0)] = (
                try row.decode(String.self, at: 1), try row.decode(String.self, at: 2)
            )
        }
        return applied
    }

    /// The files not yet applied, after checking that the applied ones are unchanged.
    private func pendingMigrations(applied: [Int: (name: String, checksum: String)]) throws(PostgresError)
        -> [Migration]
    {
        for migration in self.migrations {
            guard let record = applied[migration.version] else { continue }
            guard record.checksum == migration.checksum, record.name == migration.name else {
                throw PostgresError(
                    kind: .migration,
                    message: """
                        migration \(String(format4: migration.version))_\(migration.name) was edited after it was applied \
                        (recorded as \(record.name), checksum \(record.checksum.prefix(12))…); \
                        add a new migration instead of changing an applied one
                        """
                )
            }
        }
        let known = Set(self.migrations.map(\.version))
        for version in applied.keys.sorted() where !known.contains(version) {
            // A newer release applied it; this (older) build can still run on the expanded schema
            // during a rolling deploy, so this is a warning, not a refusal.
            self.logger.warning(
                "database has a migration this build does not know",
                metadata: ["version": "\(version)", "name": "\(applied[version]!.name)"]
            )
        }
        let newestApplied = applied.keys.max() ?? 0
        let pending = self.migrations.filter { applied[$0.version] == nil }
        if let early = pending.first(where: { $0.version < newestApplied }) {
            throw PostgresError(
                kind: .migration,
                message: """
                    migration \(String(format4: early.version))_\(early.name) is not applied but \
                    \(String(format4: newestApplied)) is; number new migrations after the newest applied one
                    """
            )
        }
        return pending
    }
}

extension String {
    /// `7` → `"0007"`, as migration files are numbered.
    fileprivate init(format4 value: Int) {
        let digits = String(value)
        self = String(repeating: "0", count: Swift.max(0, 4 - digits.count)) + digits
    }
}
