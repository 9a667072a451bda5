import Crypto
import Foundation
public import _CryptoExtras

extension _RSA.Signing.PrivateKey {
    /// Reads an RSA private key (2048 bits or more) from PEM: PKCS #8 `PRIVATE KEY`, as WeChat Pay's
    /// merchant tool and `openssl genpkey` write it, or PKCS #1 `RSA PRIVATE KEY`, as older Alipay
    /// tools do. Alipay's console also hands out bare base64 of PKCS #8 or PKCS #1; that is read too.
    public init(providerPEM text: String) throws(ProviderKeyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ProviderKeyError("the private key text is empty") }
        do {
            if trimmed.hasPrefix("-----BEGIN") {
                self = try Self(pemRepresentation: trimmed)
            } else if let der = Data(base64Encoded: trimmed.filter { !$0.isWhitespace }) {
                self = try Self(derRepresentation: der)
            } else {
                throw ProviderKeyError("the private key is neither PEM nor base64")
            }
        } catch let error as ProviderKeyError {
            throw error
        } catch {
            throw ProviderKeyError("the private key does not parse as an RSA key: \(error)")
        }
        guard self.keySizeInBits >= 2048 else {
            throw ProviderKeyError("the RSA key has \(self.keySizeInBits) bits; 2048 or more are required")
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 of `message` (WeChat Pay's SHA256withRSA, Alipay's RSA2), as
    /// standard base64.
    public func pkcs1SHA256Signature(for message: [UInt8]) throws -> String {
        try self.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation
            .base64EncodedString()
    }
}
