import CLibPQ

import class Foundation.ProcessInfo

/// Where and how to connect: a libpq connection string or `postgres://` URL, plus the defaults this
/// service wants when the string does not say otherwise.
///
/// libpq parses the string itself, so everything libpq accepts works: multi-host lists with
/// `target_session_attrs=read-write`, `sslmode`, and the `PG*` environment variables for whatever
/// the string leaves out.
public struct ConnectionConfiguration: Sendable, CustomStringConvertible {
    /// The string as given. It may hold a password: never log it; log ``description`` instead.
    let connectionString: String
    /// Settings applied unless the string or a `PG*` variable sets them (see ``init(_:defaults:)``).
    let defaults: [(keyword: String, value: String)]
    /// Whether connections prepare the statements they run (see ``PreparedStatements``).
    public var preparedStatements = PreparedStatements.automatic

    /// Named prepared statements live in a server session. Through a pooler in transaction mode
    /// (PgBouncer before 1.21) one client connection's transactions land on different server
    /// sessions, so a statement prepared in one is missing, or is another client's, in the next.
    public enum PreparedStatements: String, Sendable, CaseIterable {
        /// Prepared when the connection reaches PostgreSQL itself: when the backend process the
        /// server reports running the session (`pg_backend_pid()`) is the one the connection was
        /// told at start-up. A pooler answers start-up itself with a key of its own, so the two
        /// differ behind one, and statements then run unnamed.
        case automatic = "auto"
        /// Always prepared (a direct connection, or a pooler that keeps them, such as PgBouncer
        /// 1.21+ with `max_prepared_statements`).
        case on = "true"
        /// Never prepared: each statement is parsed and planned every time it runs.
        case off = "false"
    }

    /// The defaults for a long-running service: a bounded connect time (libpq's default is to wait
    /// forever); a network that went silent noticed within about half a minute, by TCP keepalives
    /// on an idle connection and by `tcp_user_timeout` on one waiting for an answer (keepalives
    /// probe only a connection with nothing unacknowledged: a query sent into a dead network would
    /// otherwise hold its pool thread for the kernel's 15 minutes of retransmissions); and an
    /// application name that shows in `pg_stat_activity`. A query the server takes long to answer
    /// is not cut short: its bytes were acknowledged.
    public static let serviceDefaults: [(keyword: String, value: String)] = [
        ("connect_timeout", "5"),
        ("application_name", "paynotify"),
        ("keepalives", "1"),
        ("keepalives_idle", "15"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
    ]

    /// Checks the string with libpq's own parser.
    ///
    /// - Throws: ``PostgresError/Kind/invalidConnectionString`` with libpq's message.
    public init(
        _ connectionString: String,
        defaults: [(keyword: String, value: String)] = Self.serviceDefaults
    ) throws(PostgresError) {
        self.connectionString = connectionString
        self.defaults = defaults
        let options = try Self.parse(connectionString)
        // libpq checks ports only when it connects; a typo should stop the service at start instead.
        for (keyword, value) in options where keyword == "port" {
            for port in value.split(separator: ",", omittingEmptySubsequences: false) where !port.isEmpty {
                guard let number = Int(port), (1...65535).contains(number) else {
                    throw PostgresError(kind: .invalidConnectionString, message: "invalid port number: \"\(port)\"")
                }
            }
        }
    }

    /// The settings with any password left out, for logs.
    public var description: String {
        let options = (try? Self.parse(self.connectionString)) ?? []
        let shown = options.filter { !Self.isSecret($0.keyword) }
        let text = shown.map { "\($0.keyword)=\($0.value)" }.joined(separator: " ")
        return text.isEmpty ? "(libpq defaults)" : text
    }

    /// The keywords and values libpq's `PQconnectdbParams` receives, in order: our defaults first,
    /// then the string itself as an expanded `dbname`, whose settings override earlier ones, then
    /// `client_encoding=UTF8`, which nothing overrides (not the string, not `PGCLIENTENCODING`):
    /// text is decoded and sent as UTF-8, what Swift strings are, whatever the database's encoding.
    var keywordsAndValues: [(keyword: String, value: String)] {
        let environment = ProcessInfo.processInfo.environment
        let applicable = self.defaults.filter { keyword, _ in
            // A PG* variable that sets the same thing wins over our default, as it would with plain libpq.
            guard let variable = Self.environmentVariable[keyword] else { return true }
            return environment[variable] == nil
        }
        return applicable + [("dbname", self.connectionString), ("client_encoding", "UTF8")]
    }

    /// Settings left out of ``description``: the password and the client key material.
    private static func isSecret(_ keyword: String) -> Bool {
        keyword == "password" || keyword == "sslpassword" || keyword == "sslkey"
    }

    private static let environmentVariable = [
        "connect_timeout": "PGCONNECT_TIMEOUT",
        "application_name": "PGAPPNAME",
    ]

    /// The non-empty settings in the string, as libpq reads them.
    private static func parse(_ string: String) throws(PostgresError) -> [(keyword: String, value: String)] {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(string, &errorMessage) else {
            let message = errorMessage.map { String(cString: $0) } ?? "out of memory"
            PQfreemem(errorMessage)
            throw PostgresError(
                kind: .invalidConnectionString,
                message: message.trimmingTrailingWhitespace()
            )
        }
        defer { PQconninfoFree(options) }
        var result: [(keyword: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val, value.pointee != 0 {
                result.append((String(cString: keyword), String(cString: value)))
            }
            option += 1
        }
        return result
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
