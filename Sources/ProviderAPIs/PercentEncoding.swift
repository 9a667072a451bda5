import Foundation

/// Percent-encoding of everything but RFC 3986's unreserved characters (`A–Z a–z 0–9 - . _ ~`):
/// safe in a path segment, a query value and a form value alike, so what is signed and what is
/// sent cannot differ by an encoder's taste.
package enum PercentEncoding {
    package static func encode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(hex[Int(byte >> 4)])
                encoded.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return encoded
    }

    /// A path segment: `.` is encoded too, so that no id can read as `.` or `..`.
    package static func segment(_ text: String) -> String {
        Self.encode(text).replacingOccurrences(of: ".", with: "%2E")
    }

    /// `name=value&…` in the order given, both sides encoded.
    package static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
    }
}
