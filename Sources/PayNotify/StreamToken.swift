import Crypto
import Foundation
import PaymentProviders

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
    /// compared in constant time, and the answer is the same kind of "no" for every failure.
    func isValid(_ token: String, orderID: String, now: Date) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let expiry = Int64(parts[1]),
            let presented = [UInt8](base64URLEncoded: String(parts[2]))
        else { return false }
        let expected = self.signature(orderID: orderID, expiry: expiry)
        return constantTimeEquals(expected, presented) && Double(expiry) > now.timeIntervalSince1970
    }

    private func signature(orderID: String, expiry: Int64) -> [UInt8] {
        let message = Array("paynotify-stream-v1\n\(orderID)\n\(expiry)".utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: self.secret)))
    }
}

extension Array where Element == UInt8 {
    /// Base64 with the URL-safe alphabet and no padding.
    var base64URLEncoded: String {
        Data(self).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URLEncoded text: String) {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return nil
        }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64) else { return nil }
        self = Array(data)
    }
}
