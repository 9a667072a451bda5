import Crypto
import Foundation

/// An endpoint's signing secret in Standard Webhooks' form: `whsec_` and the base64 of 24–64
/// random bytes, which are the HMAC key.
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible {
    /// The text shown to the merchant once, and stored.
    public let text: String
    /// The HMAC key.
    let key: [UInt8]

    /// Reads a `whsec_…` secret; `nil` when it is not one (wrong prefix, not base64, or a key
    /// outside 24–64 bytes).
    public init?(_ text: String) {
        guard text.hasPrefix(Self.prefix), let bytes = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))),
            (24...64).contains(bytes.count)
        else { return nil }
        self.text = text
        self.key = Array(bytes)
    }

    /// A new secret of 32 random bytes (the system's generator).
    public static func generate() -> WebhookSecret {
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Self.prefix + Data($0).base64EncodedString() }
        return WebhookSecret(text)!
    }

    /// Never the secret itself: a secret must not reach a log through string interpolation.
    public var description: String { "whsec_(redacted)" }

    static let prefix = "whsec_"
}
