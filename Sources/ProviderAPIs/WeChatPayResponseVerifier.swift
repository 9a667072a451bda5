package import Foundation
import NIOHTTP1
import PaymentProviders
package import _CryptoExtras

/// Checks that a WeChat Pay API v3 answer comes from WeChat Pay, now: the platform key named by
/// `Wechatpay-Serial` signed `Wechatpay-Timestamp\nWechatpay-Nonce\nBODY\n` (SHA256withRSA, PKCS #1
/// v1.5), and the timestamp is within the tolerance of `now`, either way.
///
/// WeChat Pay signs every `2xx` answer, the close's empty `204` too; "an answer with a 2xx status
/// and no signature is to be taken as forged or tampered with". Its error answers (`4xx`, `5xx`)
/// are not signed, so they are never passed here.
package struct WeChatPayResponseVerifier: Sendable {
    /// Platform keys by serial: the platform certificate's serial, or the WeChat Pay public key's
    /// ID (`PUB_KEY_ID_…`). Several while one replaces another.
    package let platformKeys: [String: _RSA.Signing.PublicKey]
    /// How far `Wechatpay-Timestamp` may be from now; WeChat Pay's SDKs allow under 5 minutes.
    package let tolerance: Duration

    package init(platformKeys: [String: _RSA.Signing.PublicKey], tolerance: Duration) {
        self.platformKeys = platformKeys
        self.tolerance = tolerance
    }

    /// - Throws: ``ProviderCallError/unverified(_:)`` when a header is missing or repeated, the
    ///   serial names no configured key, the signature does not verify, or the timestamp is out of
    ///   the window. The message names the reason, never the body.
    package func verify(_ response: ProviderResponse, now: Date) throws(ProviderCallError) {
        let timestamp = try Self.header("Wechatpay-Timestamp", response.headers)
        let nonce = try Self.header("Wechatpay-Nonce", response.headers)
        let signature = try Self.header("Wechatpay-Signature", response.headers)
        let serial = try Self.header("Wechatpay-Serial", response.headers)
        if let type = response.headers.first(name: "Wechatpay-Signature-Type"), type != WeChatPaySignature.scheme {
            throw .unverified("Wechatpay-Signature-Type \(type.prefix(40)) is not \(WeChatPaySignature.scheme)")
        }
        guard let key = self.platformKeys[serial] else {
            throw .unverified("Wechatpay-Serial \(serial.prefix(64)) names no configured platform key")
        }
        // WeChat Pay sends probe answers signed `WECHATPAY/SIGNTEST/…` that must fail; they are
        // not base64 of a 2048-bit signature, so they do.
        guard let signatureBytes = Data(base64Encoded: signature).map(Array.init),
            key.isValidPKCS1SHA256Signature(
                signatureBytes,
                for: WeChatPaySignature.responseMessage(timestamp: timestamp, nonce: nonce, body: response.body)
            )
        else { throw .unverified("Wechatpay-Signature does not verify with platform key \(serial.prefix(64))") }
        // Checked after the signature, so that a forged answer is reported as forged.
        guard timestamp.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let seconds = Int64(timestamp)
        else { throw .unverified("Wechatpay-Timestamp \(timestamp.prefix(20)) is not Unix seconds") }
        let age = now.timeIntervalSince1970 - TimeInterval(seconds)
        guard abs(age) < self.tolerance.timeInterval else {
            throw .unverified("Wechatpay-Timestamp is \(Int(age)) s from now; at most \(self.tolerance) allowed")
        }
    }

    /// The header's one non-empty value.
    private static func header(_ name: String, _ headers: HTTPHeaders) throws(ProviderCallError) -> String {
        let values = headers[name]
        guard values.count == 1, let value = values.first, !value.isEmpty else {
            throw .unverified(values.isEmpty ? "the answer has no \(name)" : "the answer has \(values.count) \(name)")
        }
        return value
    }
}
