/// A PostgreSQL SQLSTATE: five characters, the first two naming the class of condition.
///
/// The named values are the conditions this service reacts to; any other code still arrives intact
/// in ``rawValue``.
public struct SQLState: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// The two-character class (for example `23` for integrity constraint violations).
    public var conditionClass: Substring { self.rawValue.prefix(2) }

    public var description: String { self.rawValue }

    /// True for conditions where the same statement can succeed when tried again: serialization
    /// failures, deadlocks, a lock or statement timeout (55P03, 57014: a deployment may set
    /// `lock_timeout` or `statement_timeout`), the server shutting down or being unreachable
    /// (class 08, 57P0x), and a write refused by a server in recovery (25006: a standby, or a
    /// primary being demoted in a failover; the new primary takes the retry).
    var isTransient: Bool {
        switch self {
        case .serializationFailure, .deadlockDetected, .adminShutdown, .crashShutdown, .cannotConnectNow,
            .lockNotAvailable, .queryCanceled, .readOnlySQLTransaction:
            return true
        default:
            return self.conditionClass == "08"
        }
    }

    public static let uniqueViolation = Self(rawValue: "23505")
    package static let foreignKeyViolation = Self(rawValue: "23503")
    package static let checkViolation = Self(rawValue: "23514")
    static let serializationFailure = Self(rawValue: "40001")
    static let deadlockDetected = Self(rawValue: "40P01")
    static let lockNotAvailable = Self(rawValue: "55P03")
    package static let queryCanceled = Self(rawValue: "57014")
    static let adminShutdown = Self(rawValue: "57P01")
    static let crashShutdown = Self(rawValue: "57P02")
    static let cannotConnectNow = Self(rawValue: "57P03")
    static let readOnlySQLTransaction = Self(rawValue: "25006")
    package static let undefinedTable = Self(rawValue: "42P01")
    package static let inFailedTransaction = Self(rawValue: "25P02")
}
