public import Foundation

/// The texts Alipay's open platform signs (RSA2: SHA256withRSA, PKCS #1 v1.5):
/// - a gateway request, signed with the app's private key: every parameter but `sign`, empty ones
///   left out, sorted by name (byte order), joined as `name=value&…` unencoded; `sign_type` is
///   signed;
/// - a gateway answer, signed with Alipay's key: the raw text of the `<method>_response` object
///   (`alipay.trade.query` → `alipay_trade_query_response`), exactly as sent, from its `{` to its
///   `}`; the `sign` beside it carries the signature.
public enum AlipaySignature {
    /// `name=value` pairs of the non-empty parameters (or of all, `keepingEmpty`), sorted by the
    /// names' bytes, joined with `&`.
    public static func content(_ parameters: [String: String], keepingEmpty: Bool = false) -> [UInt8] {
        let sorted = parameters.filter { keepingEmpty || !$0.value.isEmpty }
            .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        return Array(sorted.map { "\($0.key)=\($0.value)" }.joined(separator: "&").utf8)
    }

    /// The key an answer to `method` is under (`alipay.trade.close` → `alipay_trade_close_response`).
    public static func responseKey(method: String) -> String {
        method.replacingOccurrences(of: ".", with: "_") + "_response"
    }

    /// The signed text of an answer: the raw bytes of the object under `key`, or `nil` when the body
    /// holds no such object at its top level.
    public static func responseContent(_ body: [UInt8], key: String) -> ArraySlice<UInt8>? {
        let token = Array("\"\(key)\"".utf8)
        var depth = 0
        var found: ArraySlice<UInt8>?
        Self.scanStructure(body, from: 0) { index, byte in
            switch byte {
            case UInt8(ascii: "\""):
                // A key of the top-level object: is it ours, followed by `:` and an object?
                if depth == 1, body[index...].starts(with: token),
                    let start = Self.objectStart(body, after: index + token.count),
                    let end = Self.objectEnd(body, from: start)
                {
                    found = body[start...end]
                    return false
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
            return true
        }
        return found
    }

    /// Alipay's `timestamp` parameter: `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8).
    public static func beijingTimestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 8 * 3_600)!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d",
            parts.year ?? 0,
            parts.month ?? 0,
            parts.day ?? 0,
            parts.hour ?? 0,
            parts.minute ?? 0,
            parts.second ?? 0
        )
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }

    /// The index of the `{` that follows `: ` after a key ending before `index`.
    private static func objectStart(_ body: [UInt8], after index: Int) -> Int? {
        var index = index
        while index < body.count, Self.isSpace(body[index]) { index += 1 }
        guard index < body.count, body[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        while index < body.count, Self.isSpace(body[index]) { index += 1 }
        guard index < body.count, body[index] == UInt8(ascii: "{") else { return nil }
        return index
    }

    /// The index of the `}` that closes the object opening at `start`.
    private static func objectEnd(_ body: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var end: Int?
        Self.scanStructure(body, from: start) { index, byte in
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    end = index
                    return false
                }
            default: break
            }
            return true
        }
        return end
    }

    /// Calls `visit` with every byte outside JSON string literals and with the quote that opens
    /// each one, in order, until it returns false.
    private static func scanStructure(_ body: [UInt8], from start: Int, _ visit: (Int, UInt8) -> Bool) {
        var inString = false
        var escaped = false
        for index in start..<body.count {
            let byte = body[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            if byte == UInt8(ascii: "\"") { inString = true }
            guard visit(index, byte) else { return }
        }
    }
}
