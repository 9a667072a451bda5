import Crypto
import Foundation
import Signatures

/// The checkout page's capability for one order's stream: an HMAC-SHA256, keyed by
/// `PAYNOTIFY_STREAM_SECRET`, over the order id and an expiry.
///
/// Format: `v1.<expiry unix seconds>.<base64url signature>`. Nothing in it reveals the secret or
/// lets a holder derive a token for another order or a later expiry.
struct StreamTokenSigner: Sendable {
    /// The secret's bytes (`SymmetricKey` is not `Sendable` in this swift-crypto).
    private let secret: [UInt8]

    init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    func token(orderID: String, expiresAt: Date) -> String {
        let expiry = Int64(expiresAt.timeIntervalSince1970.rounded(.up))
        return "v1.\(expiry).\(self.signature(orderID: orderID, expiry: expiry).base64URLEncoded)"
    }

    /// True when `token` was issued for `orderID` and has not expired at `now`. The signature is
    /// compared in constant time, as the text this signer would have issued (only canonical
    /// base64url is ever issued), and the answer is the same kind of "no" for every failure.
    func isValid(_ token: String, orderID: String, now: Date) -> Bool {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].elementsEqual("v1".utf8), let expiry = Int64(Substring(parts[1])) else {
            return false
        }
        let expected = self.signature(orderID: orderID, expiry: expiry).base64URLEncoded
        return constantTimeEquals(Array(expected.utf8), Array(parts[2])) && Double(expiry) > now.timeIntervalSince1970
    }

    private func signature(orderID: String, expiry: Int64) -> [UInt8] {
        let message = Array("paynotify-stream-v1\n\(orderID)\n\(expiry)".utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: self.secret)))
    }
}

extension Array where Element == UInt8 {
    /// Base64 with the URL-safe alphabet and no padding (RFC 4648, section 5). Written out over
    /// bytes: Foundation's encoder and three string replacements were most of a stream open's
    /// token check (BENCHMARKS.md, item 13).
    var base64URLEncoded: String {
        var encoded: [UInt8] = []
        encoded.reserveCapacity((self.count * 4 + 2) / 3)
        var index = 0
        while index < self.count {
            let remaining = self.count - index
            var group = UInt32(self[index]) << 16
            if remaining > 1 { group |= UInt32(self[index + 1]) << 8 }
            if remaining > 2 { group |= UInt32(self[index + 2]) }
            // Four characters of six bits each for three bytes; two or three for the last one or two.
            for shift in [18, 12, 6, 0].prefix(Swift.min(remaining, 3) + 1) {
                encoded.append(base64URLAlphabet[Int((group >> UInt32(shift)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: encoded, as: UTF8.self)
    }
}

private let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
