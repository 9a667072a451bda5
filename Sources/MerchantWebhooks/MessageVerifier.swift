import Crypto
public import Foundation

/// The receiving side of ``MessageSignature``, as a careful merchant checks a delivery: the
/// timestamp within a tolerance of now, and one of the `v1` signatures matching one of the secrets,
/// compared in constant time. `paynotify listen` uses it.
public enum MessageVerifier {
    public enum Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        case missingHeader(String)
        case timestampOutOfTolerance(secondsAway: Int64)
        case noMatchingSignature

        public var description: String {
            switch self {
            case .missingHeader(let name): "the \(name) header is missing or malformed"
            case .timestampOutOfTolerance(let seconds): "webhook-timestamp is \(seconds) s from now"
            case .noMatchingSignature: "no v1 signature matches the secret"
            }
        }
    }

    /// Checks a delivery; throws why it must be refused.
    ///
    /// - Parameter header: the request's header value by lowercase name.
    public static func verify(
        header: (String) -> String?,
        body: [UInt8],
        secrets: [WebhookSecret],
        now: Date,
        tolerance: Int64 = 300
    ) throws(Refusal) {
        guard let id = header("webhook-id"), !id.isEmpty else { throw .missingHeader("webhook-id") }
        guard let timestamp = header("webhook-timestamp").flatMap({ Int64($0) }) else {
            throw .missingHeader("webhook-timestamp")
        }
        guard let signatures = header("webhook-signature") else { throw .missingHeader("webhook-signature") }
        let away = timestamp - Int64(now.timeIntervalSince1970)
        guard abs(away) <= tolerance else { throw .timestampOutOfTolerance(secondsAway: away) }
        let given = signatures.split(separator: " ").compactMap { part -> Data? in
            let pieces = part.split(separator: ",", maxSplits: 1)
            guard pieces.count == 2, pieces[0] == "v1" else { return nil }
            return Data(base64Encoded: String(pieces[1]))
        }
        let signed = MessageSignature.signedContent(id: id, timestamp: timestamp, body: body)
        for secret in secrets {
            // HMAC's own comparison runs in constant time.
            let key = SymmetricKey(data: secret.key)
            if given.contains(where: { HMAC<SHA256>.isValidAuthenticationCode($0, authenticating: signed, using: key) })
            {
                return
            }
        }
        throw .noMatchingSignature
    }
}
