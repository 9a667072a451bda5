import Signatures

/// The fields of an `application/x-www-form-urlencoded` body, in the order sent, each name and
/// value decoded exactly once: `+` is a space, `%XX` a byte, and the bytes must be UTF-8.
///
/// `URLComponents.queryItems` is not a substitute: it leaves `+` alone, and Alipay encodes spaces
/// as `+` (`notify_time=2016-07-19+14%3A10%3A49`). Empty `&&` segments are skipped; a segment
/// without `=` is a name with an empty value.
///
/// - Throws: `.malformedPayload` for a `%` not followed by two hex digits, or bytes that are not UTF-8.
func formFields(_ body: [UInt8]) throws(WebhookRejection) -> [(name: String, value: String)] {
    var fields: [(name: String, value: String)] = []
    for segment in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        let parts = segment.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        let name = try formDecode(parts[0])
        let value = parts.count > 1 ? try formDecode(parts[1]) : ""
        fields.append((name, value))
    }
    return fields
}

private func formDecode(_ encoded: ArraySlice<UInt8>) throws(WebhookRejection) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(encoded.count)
    var index = encoded.startIndex
    while index < encoded.endIndex {
        let byte = encoded[index]
        switch byte {
        case UInt8(ascii: "+"):
            bytes.append(UInt8(ascii: " "))
            index += 1
        case UInt8(ascii: "%"):
            guard encoded.endIndex - index >= 3,
                let decoded = hexBytes(String(decoding: encoded[(index + 1)...(index + 2)], as: UTF8.self)),
                decoded.count == 1
            else {
                throw WebhookRejection(.malformedPayload, "the form body has an invalid % escape")
            }
            bytes.append(decoded[0])
            index += 3
        default:
            bytes.append(byte)
            index += 1
        }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw WebhookRejection(.malformedPayload, "the form body is not UTF-8")
    }
    return text
}
