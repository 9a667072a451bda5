public import struct Foundation.Date
public import struct Foundation.UUID

/// A Swift value that can be read from a result column (results arrive in binary format).
public protocol PostgresDecodable: Sendable {
    /// Reads a non-NULL value of the given column type.
    init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError)

    /// The value for SQL `NULL`; only `Optional` has one.
    static func postgresNull() throws(PostgresDecodingError) -> Self
}

extension PostgresDecodable {
    public static func postgresNull() throws(PostgresDecodingError) -> Self {
        throw PostgresDecodingError("unexpected NULL")
    }
}

/// Why a column could not be read as the requested type. ``Row`` wraps it into a ``PostgresError``
/// naming the column.
public struct PostgresDecodingError: Error, Sendable {
    let reason: String

    init(_ reason: String) { self.reason = reason }

    static func unsupported(_ type: PostgresType, as swiftType: Any.Type) -> Self {
        Self("cannot read \(type) as \(swiftType)")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        self = .some(try Wrapped(postgresBytes: bytes, type: type))
    }

    public static func postgresNull() throws(PostgresDecodingError) -> Self { nil }
}

extension String: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        switch type {
        case .text, .varchar, .bpchar, .name, .json, .unknown:
            self = String(decoding: bytes, as: UTF8.self)
        case .jsonb:
            // jsonb's binary format is a version byte (1) followed by the JSON text.
            guard bytes.first == 1 else { throw PostgresDecodingError("unknown jsonb format version") }
            self = String(decoding: bytes.dropFirst(), as: UTF8.self)
        case .uuid:
            self = try UUID(postgresBytes: bytes, type: type).uuidString.lowercased()
        case .int2, .int4, .int8:
            self = String(try Int64(postgresBytes: bytes, type: type))
        default:
            throw .unsupported(type, as: String.self)
        }
    }
}

extension Int64: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        switch type {
        case .int8:
            self = try readBigEndian(Int64.self, from: bytes)
        case .int4:
            self = Int64(try readBigEndian(Int32.self, from: bytes))
        case .int2:
            self = Int64(try readBigEndian(Int16.self, from: bytes))
        case .oid:
            self = Int64(try readBigEndian(UInt32.self, from: bytes))
        default:
            throw .unsupported(type, as: Int64.self)
        }
    }
}

extension Int: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        self = Int(try Int64(postgresBytes: bytes, type: type))
    }
}

extension Bool: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        guard type == .bool else { throw .unsupported(type, as: Bool.self) }
        guard bytes.count == 1 else { throw PostgresDecodingError("bool of \(bytes.count) bytes") }
        self = bytes.first != 0
    }
}

extension Double: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        switch type {
        case .float8:
            self = Double(bitPattern: try readBigEndian(UInt64.self, from: bytes))
        case .float4:
            self = Double(Float(bitPattern: try readBigEndian(UInt32.self, from: bytes)))
        case .int2, .int4, .int8:
            self = Double(try Int64(postgresBytes: bytes, type: type))
        default:
            throw .unsupported(type, as: Double.self)
        }
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        guard type == .bytea else { throw .unsupported(type, as: [UInt8].self) }
        self = Array(bytes)
    }
}

extension UUID: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        guard type == .uuid else { throw .unsupported(type, as: UUID.self) }
        guard bytes.count == 16 else { throw PostgresDecodingError("uuid of \(bytes.count) bytes") }
        let b = Array(bytes)
        self = UUID(
            uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
        )
    }
}

extension Date: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws(PostgresDecodingError) {
        guard type == .timestamptz || type == .timestamp else { throw .unsupported(type, as: Date.self) }
        let microseconds = try readBigEndian(Int64.self, from: bytes)
        // ±infinity arrive as Int64.max / Int64.min; they have no Date, so they are refused.
        guard microseconds != .max, microseconds != .min else { throw PostgresDecodingError("infinite timestamp") }
        self = Date(timeIntervalSince1970: Double(microseconds) / 1_000_000 + postgresEpochOffset)
    }
}

private func readBigEndian<T: FixedWidthInteger>(
    _: T.Type,
    from bytes: ArraySlice<UInt8>
) throws(PostgresDecodingError) -> T {
    guard bytes.count == MemoryLayout<T>.size else {
        throw PostgresDecodingError("expected \(MemoryLayout<T>.size) bytes, got \(bytes.count)")
    }
    return bytes.reduce(T.zero) { ($0 << 8) | T(truncatingIfNeeded: $1) }
}
