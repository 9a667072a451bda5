import Crypto
import Foundation
import Signatures

/// The `t=<unix seconds>,v1=<hex HMAC-SHA256>` header scheme that the sandbox and Stripe share: the
/// signed text is `"<t>.<raw body>"`, several `v1` values may be present while a secret rotates,
/// and other schemes (such as Stripe's test-mode `v0`) are ignored.
struct TimestampedSignature: Sendable {
    /// Secrets' bytes, any of which may have signed. Several during rotation. (Bytes rather than
    /// `SymmetricKey`, which this swift-crypto does not mark `Sendable`.)
    let secrets: [[UInt8]]
    /// How far the signed time may be from now, in either direction.
    let tolerance: TimeInterval

    init(secrets: [String], tolerance: TimeInterval) {
        precondition(!secrets.isEmpty, "at least one secret")
        self.secrets = secrets.map { Array($0.utf8) }
        self.tolerance = tolerance
    }

    /// Checks the header against the body; returns nothing, throws why it fails.
    func verify(header: String?, body: [UInt8], now: Date) throws(WebhookRejection) {
        guard let header, !header.isEmpty else { throw WebhookRejection(.missingSignature, "no signature header") }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let key = Self.trimmingOptionalWhitespace(pair[0])
            let value = Self.trimmingOptionalWhitespace(pair[1])
            if key == "t" {
                guard timestamp == nil, let seconds = Int64(value) else {
                    throw WebhookRejection(.missingSignature, "the signature header's timestamp is malformed")
                }
                timestamp = seconds
            } else if key == "v1", let bytes = hexBytes(String(value)), bytes.count == SHA256.byteCount {
                signatures.append(bytes)
            }
        }
        guard let timestamp else { throw WebhookRejection(.missingSignature, "the signature header has no timestamp") }
        guard !signatures.isEmpty else {
            throw WebhookRejection(.missingSignature, "the signature header has no v1 signature")
        }
        // Authenticity first: a forged request learns nothing from the clock check.
        let valid = self.secrets.contains { secret in
            let expected = Self.signature(body: body, timestamp: timestamp, secret: secret)
            return signatures.contains { constantTimeEquals(expected, $0) }
        }
        guard valid else { throw WebhookRejection(.invalidSignature, "no signature matches") }
        let age = now.timeIntervalSince1970 - Double(timestamp)
        guard abs(age) <= self.tolerance else {
            throw WebhookRejection.outOfTolerance("signed", age: age, tolerance: self.tolerance)
        }
    }
}

extension TimestampedSignature {
    /// `text` without the spaces and tabs HTTP allows around a header's parts (RFC 9110's OWS).
    /// Foundation's `trimmingCharacters(in: .whitespaces)` did the same through `CharacterSet`,
    /// and was a third of the signature check's CPU time: 3% of the server's per webhook
    /// (BENCHMARKS.md, "This session").
    static func trimmingOptionalWhitespace(_ text: Substring) -> Substring {
        let scalars = text.unicodeScalars
        let isOWS = { (scalar: Unicode.Scalar) in scalar == " " || scalar == "\t" }
        guard let first = scalars.firstIndex(where: { !isOWS($0) }), let last = scalars.lastIndex(where: { !isOWS($0) })
        else { return text[text.endIndex...] }
        return Substring(scalars[first...last])
    }

    /// The `v1` signature: HMAC-SHA256, keyed by the secret, over `"<t>.<raw body>"`.
    static func signature(body: [UInt8], timestamp: Int64, secret: [UInt8]) -> [UInt8] {
        Array(
            HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret))
        )
    }

    /// The whole header a sender puts on a delivery: `t=<t>,v1=<hex signature>`.
    static func header(body: [UInt8], timestamp: Int64, secret: String) -> String {
        let signature = Self.signature(body: body, timestamp: timestamp, secret: Array(secret.utf8))
        return "t=\(timestamp),v1=" + hexString(signature)
    }
}
