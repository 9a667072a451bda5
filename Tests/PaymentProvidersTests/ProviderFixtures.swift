import Crypto
import Foundation
import TestSupport
import _CryptoExtras

/// RSA keys made for this test run, standing in for WeChat Pay's and Alipay's signing keys.
enum TestKeys {
    static let first = TestRSAKeys.key(5)
    static let second = TestRSAKeys.key(6)
    static let attacker = TestRSAKeys.key(7)
}

/// Base64 of the SHA256withRSA (PKCS #1 v1.5) signature of `message`, as WeChat Pay and Alipay sign.
func rsaSignature(_ message: [UInt8], key: _RSA.Signing.PrivateKey) -> String {
    let signature = try! key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
    return signature.rawRepresentation.base64EncodedString()
}

/// Stripe signs exactly like the sandbox: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
func stripeSignature(_ body: String, secret: String, timestamp: Int) -> String {
    sandboxSignature(body, secret: secret, timestamp: timestamp)
}

/// An `application/x-www-form-urlencoded` body as Alipay sends it: unreserved bytes as they are,
/// space as `+`, everything else `%XX` (upper-case hex).
func formEncoded(_ fields: [(String, String)]) -> String {
    func encode(_ text: String) -> String {
        text.utf8.map { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "*"):
                String(UnicodeScalar(byte))
            case UInt8(ascii: " "): "+"
            default: String(format: "%%%02X", byte)
            }
        }.joined()
    }
    return fields.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
}

/// A form body signed as Alipay signs trade notifications: `sign` over every other parameter
/// except `sign_type`, empty values left out (unless `signEmptyValues`, as old signers did),
/// sorted by name, joined `k=v&…`; then `sign` and `sign_type=RSA2` are appended.
func alipayBody(
    _ fields: [(String, String)],
    key: _RSA.Signing.PrivateKey = TestKeys.first,
    signType: String? = "RSA2",
    signEmptyValues: Bool = false
) -> String {
    let content = fields.filter { signEmptyValues || !$0.1.isEmpty }
        .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        .map { "\($0.0)=\($0.1)" }
        .joined(separator: "&")
    let sign = rsaSignature(Array(content.utf8), key: key)
    return formEncoded(fields + [("sign", sign)] + (signType.map { [("sign_type", $0)] } ?? []))
}
