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
    /// `lock_timeout` or `statement_timeout`), and the server shutting down or being unreachable
    /// (class 08, 57P0x).
    public var isTransient: Bool {
        switch self {
        case .serializationFailure, .deadlockDetected, .adminShutdown, .crashShutdown, .cannotConnectNow,
            .lockNotAvailable, .queryCanceled:
            return true
        default:
            return self.conditionClass == "08"
        }
    }

    public static let uniqueViolation = Self(rawValue: "23505")
    public static let foreignKeyViolation = Self(rawValue: "23503")
    public static let notNullViolation = Self(rawValue: "23502")
    public static let checkViolation = Self(rawValue: "23514")
    public static let exclusionViolation = Self(rawValue: "23P01")
    public static let invalidTextRepresentation = Self(rawValue: "22P02")
    public static let characterNotInRepertoire = Self(rawValue: "22021")
    public static let numericValueOutOfRange = Self(rawValue: "22003")
    public static let serializationFailure = Self(rawValue: "40001")
    public static let deadlockDetected = Self(rawValue: "40P01")
    public static let lockNotAvailable = Self(rawValue: "55P03")
    public static let queryCanceled = Self(rawValue: "57014")
    public static let adminShutdown = Self(rawValue: "57P01")
    public static let crashShutdown = Self(rawValue: "57P02")
    public static let cannotConnectNow = Self(rawValue: "57P03")
    public static let syntaxError = Self(rawValue: "42601")
    public static let undefinedTable = Self(rawValue: "42P01")
    public static let undefinedColumn = Self(rawValue: "42703")
    public static let inFailedTransaction = Self(rawValue: "25P02")
}
