import Foundation
import NIOCore

/// JSON encoding in one place: compact, with sorted keys, so bodies and hashes are byte-for-byte repeatable.
enum JSONBody {
    /// The value as JSON text; `nil` only if encoding fails, which our own plain values cannot.
    static func text(of value: some Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A response body; an empty object is still valid JSON if encoding ever failed.
    static func encode(_ value: some Encodable) -> ByteBuffer {
        ByteBuffer(string: self.text(of: value) ?? "{}")
    }
}
