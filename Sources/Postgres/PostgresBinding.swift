public import struct Foundation.Date
public import struct Foundation.UUID

/// One value bound to a `$n` placeholder of a statement: the bytes libpq sends, in which format,
/// and the type the server should read them as.
public struct PostgresBinding: Sendable, Hashable {
    /// The wire format of a value: text (the type's input syntax) or binary (its send format).
    enum Format: Int32, Sendable, Hashable {
        case text = 0
        case binary = 1
    }

    /// The bytes to send; `nil` is SQL `NULL`.
    var bytes: [UInt8]?
    var format: Format
    var type: PostgresType

    init(bytes: [UInt8]?, format: Format, type: PostgresType) {
        self.bytes = bytes
        self.format = format
        self.type = type
    }

    /// SQL `NULL`, of a type the server infers.
    static let null = Self(bytes: nil, format: .text, type: .unspecified)

    /// A value in the type's text input syntax; the server infers the type unless one is named.
    static func text(_ value: String, type: PostgresType = .unspecified) -> Self {
        Self(bytes: Array(value.utf8), format: .text, type: type)
    }
}

/// A Swift value that can be bound to a statement parameter.
public protocol PostgresEncodable: Sendable {
    /// The value as libpq sends it.
    var postgresBinding: PostgresBinding { get }
}

extension String: PostgresEncodable {
    /// Text with an unspecified type, so the same string binds to `text`, `uuid`, `jsonb` or an enum
    /// column as the statement requires.
    public var postgresBinding: PostgresBinding { .text(self) }
}

extension Int: PostgresEncodable {
    public var postgresBinding: PostgresBinding { Int64(self).postgresBinding }
}

extension Int64: PostgresEncodable {
    public var postgresBinding: PostgresBinding {
        PostgresBinding(bytes: bigEndianBytes(self), format: .binary, type: .int8)
    }
}

extension Int32: PostgresEncodable {
    public var postgresBinding: PostgresBinding {
        PostgresBinding(bytes: bigEndianBytes(self), format: .binary, type: .int4)
    }
}

extension Bool: PostgresEncodable {
    public var postgresBinding: PostgresBinding {
        PostgresBinding(bytes: [self ? 1 : 0], format: .binary, type: .bool)
    }
}

extension Double: PostgresEncodable {
    public var postgresBinding: PostgresBinding {
        PostgresBinding(bytes: bigEndianBytes(self.bitPattern), format: .binary, type: .float8)
    }
}

extension Array: PostgresEncodable where Element == UInt8 {
    /// Raw bytes as `bytea`, sent in binary so no escaping is involved.
    public var postgresBinding: PostgresBinding {
        PostgresBinding(bytes: self, format: .binary, type: .bytea)
    }
}

extension UUID: PostgresEncodable {
    public var postgresBinding: PostgresBinding { .text(self.uuidString.lowercased(), type: .uuid) }
}

extension Date: PostgresEncodable {
    /// A `timestamptz` in binary: microseconds since 2000-01-01 00:00:00 UTC.
    public var postgresBinding: PostgresBinding {
        let microseconds = ((self.timeIntervalSince1970 - postgresEpochOffset) * 1_000_000).rounded()
        return PostgresBinding(bytes: bigEndianBytes(Int64(microseconds)), format: .binary, type: .timestamptz)
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresBinding: PostgresBinding {
        switch self {
        case .some(let value): value.postgresBinding
        case .none: .null
        }
    }
}

/// Seconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC.
let postgresEpochOffset: Double = 946_684_800

func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}
