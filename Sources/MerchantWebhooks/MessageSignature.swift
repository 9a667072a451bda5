import Crypto
import Foundation

/// The `webhook-signature` header of one attempt (Standard Webhooks v1): HMAC-SHA256 of
/// `id.timestamp.body` with each secret, base64, as `v1,<signature>`, space-separated when an
/// endpoint's previous secret still signs beside the new one after a rotation.
public enum MessageSignature {
    /// The header value for this attempt.
    ///
    /// - Parameters:
    ///   - id: the message id (`webhook-id`), the same on every attempt.
    ///   - timestamp: this attempt's unix seconds (`webhook-timestamp`).
    ///   - body: the bytes sent, exactly.
    ///   - secrets: the current secret first, then any previous one still valid.
    public static func header(id: String, timestamp: Int64, body: [UInt8], secrets: [WebhookSecret]) -> String {
        let signed = Self.signedContent(id: id, timestamp: timestamp, body: body)
        return secrets.map { secret in
            let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: secret.key))
            return "v1," + Data(mac).base64EncodedString()
        }.joined(separator: " ")
    }

    /// What is signed: `id.timestamp.body`.
    static func signedContent(id: String, timestamp: Int64, body: [UInt8]) -> Data {
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(contentsOf: body)
        return signed
    }
}
