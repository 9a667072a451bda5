/// A PostgreSQL type, by its OID in `pg_type`. Only the built-in types this layer encodes or
/// decodes are named; results of any other type still report their OID.
public struct PostgresType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public var description: String {
        switch self {
        case .bool: "bool"
        case .bytea: "bytea"
        case .name: "name"
        case .int8: "int8"
        case .int2: "int2"
        case .int4: "int4"
        case .text: "text"
        case .oid: "oid"
        case .json: "json"
        case .float4: "float4"
        case .float8: "float8"
        case .unknown: "unknown"
        case .bpchar: "bpchar"
        case .varchar: "varchar"
        case .timestamp: "timestamp"
        case .timestamptz: "timestamptz"
        case .numeric: "numeric"
        case .uuid: "uuid"
        case .jsonb: "jsonb"
        case .unspecified: "unspecified"
        default: "oid \(self.rawValue)"
        }
    }

    /// Lets the server infer the parameter's type from the statement.
    static let unspecified = Self(rawValue: 0)
    static let bool = Self(rawValue: 16)
    static let bytea = Self(rawValue: 17)
    static let name = Self(rawValue: 19)
    static let int8 = Self(rawValue: 20)
    static let int2 = Self(rawValue: 21)
    static let int4 = Self(rawValue: 23)
    static let text = Self(rawValue: 25)
    static let oid = Self(rawValue: 26)
    static let json = Self(rawValue: 114)
    static let float4 = Self(rawValue: 700)
    static let float8 = Self(rawValue: 701)
    static let unknown = Self(rawValue: 705)
    static let bpchar = Self(rawValue: 1042)
    static let varchar = Self(rawValue: 1043)
    static let timestamp = Self(rawValue: 1114)
    static let timestamptz = Self(rawValue: 1184)
    static let numeric = Self(rawValue: 1700)
    static let uuid = Self(rawValue: 2950)
    static let jsonb = Self(rawValue: 3802)
}
