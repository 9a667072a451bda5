import Foundation
import PaymentProviders
package import _CryptoExtras

/// Checks that an Alipay gateway answer was signed by Alipay: `sign`, beside the
/// `<method>_response` object (or `error_response`), is the RSA2 signature (SHA256withRSA,
/// PKCS #1 v1.5) by an Alipay public key of that object's raw text, from its `{` to its `}`,
/// exactly as received.
///
/// As Alipay's Java SDK does, a text holding `\/` that fails is tried again with every `\/` read
/// as `/`: the gateway signs some answers before escaping their slashes.
package struct AlipayResponseVerifier: Sendable {
    /// Alipay's public keys (支付宝公钥, not the app's); several while one replaces another.
    package let publicKeys: [_RSA.Signing.PublicKey]

    package init(publicKeys: [_RSA.Signing.PublicKey]) {
        self.publicKeys = publicKeys
    }

    /// The parts of an answer that verification needs.
    package struct Envelope: Sendable {
        /// The raw text of the answer object: what is signed, and what is read once verified.
        package let content: ArraySlice<UInt8>
        /// The top-level `sign`, when there is a non-empty one.
        package let sign: String?
    }

    /// The answer object for `method` (else `error_response`) and the `sign` beside it; nil when
    /// the body holds neither object.
    package static func envelope(_ body: [UInt8], method: String) -> Envelope? {
        guard
            let content = AlipaySignature.responseContent(body, key: AlipaySignature.responseKey(method: method))
                ?? AlipaySignature.responseContent(body, key: "error_response")
        else { return nil }
        let sign = (try? JSONDecoder().decode(SignField.self, from: Data(body)))?.sign
        return Envelope(content: content, sign: sign?.isEmpty == false ? sign : nil)
    }

    private struct SignField: Decodable {
        let sign: String?
    }

    /// Whether `sign` is an Alipay key's signature of `content`, or of `content` with `\/` read as `/`.
    package func isValid(_ content: ArraySlice<UInt8>, sign: String) -> Bool {
        guard let signature = Data(base64Encoded: sign).map(Array.init) else { return false }
        if self.publicKeys.contains(where: { $0.isValidPKCS1SHA256Signature(signature, for: Array(content)) }) {
            return true
        }
        let escapedSlash: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "/")]
        guard content.firstRange(of: escapedSlash) != nil else { return false }
        let unescaped = Array(content).replacing(escapedSlash, with: [UInt8(ascii: "/")])
        return self.publicKeys.contains { $0.isValidPKCS1SHA256Signature(signature, for: unescaped) }
    }
}
