import Crypto
import Foundation
import SwiftASN1
import X509
package import _CryptoExtras

/// Why a provider's key material could not be used. Raised while configuring an adapter, never
/// while verifying a delivery.
public struct ProviderKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

extension _RSA.Signing.PublicKey {
    /// Reads an RSA public key (2048 bits or more) in any of the forms providers hand out:
    /// - PEM `PUBLIC KEY` (SubjectPublicKeyInfo): WeChat Pay public keys;
    /// - PEM `CERTIFICATE` (X.509): WeChat Pay platform certificates, Alipay certificate mode;
    /// - bare base64 of a DER SubjectPublicKeyInfo (or certificate), line breaks allowed: how
    ///   Alipay shows its public key.
    ///
    /// The certificate's validity and chain are not checked: it is a container for a key the
    /// operator configured, not a credential presented by the sender.
    ///
    /// - Important: Every form is parsed by swift-certificates, which checks the ASN.1 down to the
    ///   inner RSA key before handing it to swift-crypto. Swift-crypto 3.12's own
    ///   `_RSA.Signing.PublicKey(derRepresentation:)` frees its key twice when given bytes that are
    ///   neither SubjectPublicKeyInfo nor PKCS #1, aborting the process now and then; so it only
    ///   ever sees bytes known to parse. (PKCS #1 `RSA PUBLIC KEY` PEM is refused for the same reason;
    ///   no provider hands it out.)
    package init(providerText text: String) throws(ProviderKeyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ProviderKeyError("the key text is empty") }
        let publicKey: Certificate.PublicKey
        if trimmed.hasPrefix("-----BEGIN CERTIFICATE-----") {
            do {
                publicKey = try Certificate(pemEncoded: trimmed).publicKey
            } catch {
                throw ProviderKeyError("the certificate does not parse: \(error)")
            }
        } else if trimmed.hasPrefix("-----BEGIN PUBLIC KEY-----") {
            do {
                publicKey = try Certificate.PublicKey(pemEncoded: trimmed)
            } catch {
                throw ProviderKeyError("the PEM public key does not parse: \(error)")
            }
        } else if trimmed.hasPrefix("-----BEGIN") {
            throw ProviderKeyError("only PEM PUBLIC KEY and CERTIFICATE are read, or bare base64")
        } else {
            guard let der = Data(base64Encoded: trimmed.filter { !$0.isWhitespace }).map(Array.init) else {
                throw ProviderKeyError("the key is neither PEM nor base64")
            }
            if let key = try? Certificate.PublicKey(derEncoded: der) {
                publicKey = key
            } else if let certificate = try? Certificate(derEncoded: der) {
                publicKey = certificate.publicKey
            } else {
                throw ProviderKeyError("the base64 key is neither a SubjectPublicKeyInfo nor a certificate")
            }
        }
        guard let key = Self(publicKey) else { throw ProviderKeyError("the key is not RSA") }
        // swift-certificates reads RSA keys with swift-crypto's 2048-bit minimum; checked again here
        // so that the contract does not rest on that.
        guard key.keySizeInBits >= 2048 else {
            throw ProviderKeyError("the RSA key has \(key.keySizeInBits) bits; 2048 or more are required")
        }
        self = key
    }

    /// Whether `signature` is an RSASSA-PKCS1-v1_5 signature with SHA-256 of `message` (what
    /// WeChat Pay calls SHA256withRSA and Alipay RSA2). The padding is explicit: `_CryptoExtras`
    /// defaults to PSS, which these providers never use.
    package func isValidPKCS1SHA256Signature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        // A wrong length can never verify; refusing it here keeps odd inputs away from BoringSSL.
        guard signature.count == (self.keySizeInBits + 7) / 8 else { return false }
        return self.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature),
            for: SHA256.hash(data: message),
            padding: .insecurePKCS1v1_5
        )
    }
}
