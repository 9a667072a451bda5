import Foundation

/// Any JSON value, for the parts of a request the service stores without interpreting (order
/// metadata, a merchant event's data).
indirect enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    /// Integers are kept exact (a Double would change those above 2^53).
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// True when a string or key anywhere inside holds U+0000, which PostgreSQL's `jsonb` refuses.
    var containsNUL: Bool {
        switch self {
        case .null, .bool, .integer, .number: false
        case .string(let text): text.unicodeScalars.contains("\0")
        case .array(let values): values.contains(where: \.containsNUL)
        case .object(let members): members.contains { $0.key.unicodeScalars.contains("\0") || $0.value.containsNUL }
        }
    }

    /// Compact JSON text with sorted keys (a stable form, also for hashing).
    var text: String { JSONBody.text(of: self) ?? "null" }
}
