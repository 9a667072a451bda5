public import Logging
public import Postgres

/// Everything the service reads at start, from environment variables (and command-line flags, which
/// the command merges in under the same names). Validated once: a bad value stops the process with
/// a message naming the setting.
///
/// - Configuration keys:
///   - `DATABASE_URL` (required): a `postgres://` URL or libpq connection string.
///   - `PAYNOTIFY_HOST`: address to bind. Default `127.0.0.1`.
///   - `PAYNOTIFY_PORT`: port to bind, `0` for any free one. Default `8080`.
///   - `PAYNOTIFY_DB_POOL_SIZE`: most database connections open at once. Default `10`.
///   - `PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a free connection. Default `5000`.
///   - `PAYNOTIFY_MIGRATIONS_DIR`: where the `NNNN_name.sql` files are. Default `migrations`.
///   - `PAYNOTIFY_MIGRATE_ON_START`: apply pending migrations before serving. Default `true`.
///   - `PAYNOTIFY_LOG_LEVEL`: `trace` … `critical`. Default `info`.
public struct AppConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: ConnectionConfiguration
    public var poolSize: Int
    public var acquireTimeout: Duration
    public var migrationsDirectory: String
    public var migrateOnStart: Bool
    public var logLevel: Logger.Level

    /// Reads and validates the configuration.
    ///
    /// - Throws: ``ConfigurationError`` naming the first setting that is missing or invalid.
    public init(environment: [String: String]) throws(ConfigurationError) {
        let reader = SettingsReader(environment: environment)
        guard let databaseURL = reader.string("DATABASE_URL") else {
            throw ConfigurationError(
                setting: "DATABASE_URL",
                message:
                    "is not set; give a postgres:// URL or a libpq connection string (`make run` starts a local database and sets it)"
            )
        }
        do {
            self.database = try ConnectionConfiguration(databaseURL)
        } catch {
            // libpq's message may quote the string, password included: say what is wrong, not what was given.
            throw ConfigurationError(
                setting: "DATABASE_URL",
                message: "is not a valid connection string or URL: \(error.message)"
            )
        }
        self.host = reader.string("PAYNOTIFY_HOST") ?? "127.0.0.1"
        self.port = try reader.integer("PAYNOTIFY_PORT", default: 8080, in: 0...65535)
        self.poolSize = try reader.integer("PAYNOTIFY_DB_POOL_SIZE", default: 10, in: 1...1000)
        self.acquireTimeout = .milliseconds(
            try reader.integer("PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS", default: 5000, in: 1...600_000)
        )
        self.migrationsDirectory = reader.string("PAYNOTIFY_MIGRATIONS_DIR") ?? "migrations"
        self.migrateOnStart = try reader.boolean("PAYNOTIFY_MIGRATE_ON_START", default: true)
        self.logLevel = try reader.logLevel("PAYNOTIFY_LOG_LEVEL", default: .info)
    }
}

/// A setting that is missing or invalid; the message names it and never repeats a secret's value.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let setting: String
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(self.setting) \(self.message)" }
}

/// Typed reads of settings; empty values count as unset.
struct SettingsReader {
    let environment: [String: String]

    func string(_ name: String) -> String? {
        guard let value = self.environment[name], !value.isEmpty else { return nil }
        return value
    }

    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError)
        -> Int
    {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                setting: name,
                message: "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\""
            )
        }
        return value
    }

    func boolean(_ name: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let text = self.string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(setting: name, message: "must be true or false, not \"\(text)\"")
        }
    }

    func logLevel(_ name: String, default defaultValue: Logger.Level) throws(ConfigurationError) -> Logger.Level {
        guard let text = self.string(name) else { return defaultValue }
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(setting: name, message: "must be one of \(levels), not \"\(text)\"")
        }
        return level
    }
}
