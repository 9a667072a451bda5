/// An error from the database layer: a statement the server refused, a connection that could not be
/// opened or broke, a value that could not be decoded, or a pool that could not lend a connection.
///
/// Server errors carry the SQLSTATE (``sqlState``) so callers can match named conditions such as
/// ``SQLState/uniqueViolation`` instead of parsing messages.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of values.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case server
            case connectionFailed
            case connectionBroken
            case invalidConnectionString
            case invalidParameter
            case decoding
            case poolExhausted
            case poolClosed
            case migration
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The server refused a statement; ``PostgresError/sqlState`` says why.
        package static let server = Self(.server)
        /// No connection could be opened (server down, refused, authentication failed, timed out).
        package static let connectionFailed = Self(.connectionFailed)
        /// An open connection broke while in use; the statement's outcome on the server is unknown.
        static let connectionBroken = Self(.connectionBroken)
        /// libpq could not parse the connection string or URL.
        package static let invalidConnectionString = Self(.invalidConnectionString)
        /// A parameter cannot be sent (for example a text value holding a NUL byte).
        public static let invalidParameter = Self(.invalidParameter)
        /// A column could not be read as the requested Swift type.
        public static let decoding = Self(.decoding)
        /// Every pooled connection stayed busy for the whole acquire timeout.
        package static let poolExhausted = Self(.poolExhausted)
        /// The pool is not running (not started yet, or shut down).
        package static let poolClosed = Self(.poolClosed)
        /// The migrations on disk and the ones recorded in the database disagree.
        package static let migration = Self(.migration)

        public var description: String { self.base.rawValue }
    }

    /// What went wrong.
    public let kind: Kind
    /// The server's SQLSTATE, for ``Kind/server`` errors (and for connection errors the server reported).
    public let sqlState: SQLState?
    /// A human-readable message: the server's primary message, or ours.
    package let message: String
    /// The constraint the server names, for integrity violations.
    public let constraint: String?

    package init(
        kind: Kind,
        message: String,
        sqlState: SQLState? = nil,
        constraint: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
    }

    /// True when retrying the whole operation later can succeed: the database was unreachable, the
    /// connection broke, the pool was exhausted, or the server reported a transient condition.
    public var isTransient: Bool {
        switch self.kind {
        case .connectionFailed, .connectionBroken, .poolExhausted, .poolClosed:
            return true
        case .server:
            return self.sqlState?.isTransient ?? false
        default:
            return false
        }
    }

    public var description: String {
        var text = "\(self.kind): \(self.message)"
        if let sqlState { text += " (SQLSTATE \(sqlState.rawValue))" }
        if let constraint { text += " [constraint \(constraint)]" }
        return text
    }
}
