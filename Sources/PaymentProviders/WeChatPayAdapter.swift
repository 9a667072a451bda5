import Crypto
public import Foundation
public import Payments
public import _CryptoExtras

/// WeChat Pay API v3 notifications (支付通知, 退款通知).
///
/// Headers `Wechatpay-Timestamp` (Unix seconds), `Wechatpay-Nonce`, `Wechatpay-Signature`
/// (standard base64) and `Wechatpay-Serial`. The serial names the verification key: a platform
/// certificate's serial (upper-case hex) or a WeChat Pay public key id (`PUB_KEY_ID_…`). Both kinds
/// are configured side by side, since during the switch to public keys WeChat Pay signs a growing
/// share of callbacks with each. The signed message is `"<timestamp>\n<nonce>\n<raw body>\n"`,
/// verified as SHA256withRSA (PKCS #1 v1.5). WeChat Pay deliberately sends a few callbacks signed
/// wrongly, their signature starting `WECHATPAY/SIGNTEST/`, to probe that merchants verify: they
/// fail like any bad signature.
///
/// The body's `resource` is AEAD_AES_256_GCM-encrypted with the merchant's APIv3 key: nonce and
/// associated data are used as their UTF-8 bytes, the ciphertext is base64 with the 16-byte tag
/// at its end. `TRANSACTION.*` events carry a transaction, `REFUND.*` events a refund; other event
/// types (pay score, complaints…) are decrypted, acknowledged and ignored.
///
/// The notification `id` is the idempotency key. WeChat Pay does not document it as stable across
/// retries, so a retry may be recorded twice; the order state machine makes the second a no-op.
///
/// - Note: `mchid` and `appid` inside the transaction are not compared with ours: the APIv3 key
///   that decrypts the resource is the merchant's own secret, which already ties it to this merchant.
public struct WeChatPayAdapter: WebhookAdapter {
    public let provider = Provider.wechatpay
    /// Verification keys by `Wechatpay-Serial`.
    private let platformKeys: [String: _RSA.Signing.PublicKey]
    /// The APIv3 key's bytes. (Bytes rather than `SymmetricKey`, which is not `Sendable` here.)
    private let apiV3Key: [UInt8]
    /// How far `Wechatpay-Timestamp` may be from now, in either direction (the official SDKs use 300 s).
    private let tolerance: TimeInterval

    /// - Parameters:
    ///   - platformKeys: keys by serial: platform certificate serials and/or the `PUB_KEY_ID_…` id.
    ///   - apiV3Key: the APIv3 key's bytes: 32 in production; 16 and 24 are accepted as AES keys too.
    ///   - tolerance: seconds, either way.
    public init(platformKeys: [String: _RSA.Signing.PublicKey], apiV3Key: [UInt8], tolerance: TimeInterval) {
        precondition(!platformKeys.isEmpty, "at least one platform key")
        precondition([16, 24, 32].contains(apiV3Key.count), "the APIv3 key must be an AES key (32 bytes)")
        self.platformKeys = platformKeys
        self.apiV3Key = apiV3Key
        self.tolerance = tolerance
    }

    /// Builds the adapter from key text as the operator downloads it.
    ///
    /// - Parameters:
    ///   - platformKeyTexts: by serial, each a platform certificate (PEM) or a WeChat Pay public key
    ///     (PEM `PUBLIC KEY`).
    ///   - apiV3Key: the APIv3 key as set in the merchant platform (32 characters), used as its UTF-8 bytes.
    /// - Throws: when no key is given, a text is not an RSA key or certificate, or the APIv3 key's length is wrong.
    public init(platformKeyTexts: [String: String], apiV3Key: String, tolerance: TimeInterval)
        throws(ProviderKeyError)
    {
        guard !platformKeyTexts.isEmpty else { throw ProviderKeyError("no WeChat Pay platform key is configured") }
        var keys: [String: _RSA.Signing.PublicKey] = [:]
        for (serial, text) in platformKeyTexts {
            do {
                keys[serial] = try _RSA.Signing.PublicKey(providerText: text)
            } catch {
                throw ProviderKeyError("WeChat Pay key \(serial): \(error.message)")
            }
        }
        let keyBytes = Array(apiV3Key.utf8)
        guard [16, 24, 32].contains(keyBytes.count) else {
            throw ProviderKeyError("the WeChat Pay APIv3 key has \(keyBytes.count) bytes; it must have 32")
        }
        self.init(platformKeys: keys, apiV3Key: keyBytes, tolerance: tolerance)
    }

    public func verify(_ request: WebhookRequest, now: Date) throws(WebhookRejection) -> WebhookDelivery {
        guard let timestamp = request.header("wechatpay-timestamp"), !timestamp.isEmpty,
            let nonce = request.header("wechatpay-nonce"), !nonce.isEmpty,
            let signature = request.header("wechatpay-signature"), !signature.isEmpty,
            let serial = request.header("wechatpay-serial"), !serial.isEmpty
        else {
            throw WebhookRejection(
                .missingSignature,
                "Wechatpay-Timestamp, Wechatpay-Nonce, Wechatpay-Signature and Wechatpay-Serial are required"
            )
        }
        guard let seconds = Int64(timestamp) else {
            throw WebhookRejection(.missingSignature, "Wechatpay-Timestamp is not a number of seconds")
        }
        if let type = request.header("wechatpay-signature-type"), type != WeChatPaySignature.scheme {
            throw WebhookRejection(.invalidSignature, "unsupported Wechatpay-Signature-Type \(type)")
        }
        guard let key = self.platformKeys[serial] else {
            throw WebhookRejection(.invalidSignature, "no platform key is configured for serial \(serial.prefix(64))")
        }
        // Authenticity first, over the exact bytes: the header text as sent, then the raw body.
        let message = WeChatPaySignature.responseMessage(timestamp: timestamp, nonce: nonce, body: request.body)
        guard let signatureBytes = Data(base64Encoded: signature),
            key.isValidPKCS1SHA256Signature(Array(signatureBytes), for: message)
        else {
            throw WebhookRejection(.invalidSignature, "the signature does not verify with key \(serial)")
        }
        let age = now.timeIntervalSince1970 - Double(seconds)
        guard abs(age) <= self.tolerance else {
            throw WebhookRejection.outOfTolerance("signed", age: age, tolerance: self.tolerance)
        }

        let notification = try decodePayload(Notification.self, from: request.body, what: "a WeChat Pay notification")
        guard !notification.id.isEmpty, notification.id.count <= 255 else {
            throw WebhookRejection(.malformedPayload, "id must be 1–255 characters")
        }
        guard notification.resource.algorithm == "AEAD_AES_256_GCM" else {
            throw WebhookRejection(
                .malformedPayload,
                "unsupported resource algorithm \(notification.resource.algorithm)"
            )
        }
        let plaintext = try self.decrypt(notification.resource)

        let orderReference: String?
        let event: PaymentEvent?
        if notification.eventType.hasPrefix("TRANSACTION.") {
            let transaction = try decodePayload(WeChatPayTransaction.self, from: plaintext, what: "a transaction")
            orderReference = transaction.outTradeNo
            event = transaction.event
        } else if notification.eventType.hasPrefix("REFUND.") {
            let refund = try decodePayload(Refund.self, from: plaintext, what: "a refund")
            orderReference = refund.outTradeNo
            event = refund.event
        } else {
            orderReference = nil
            event = nil
        }
        return WebhookDelivery(
            provider: .wechatpay,
            eventID: notification.id,
            eventType: notification.eventType,
            orderReference: orderReference,
            event: event,
            rawBody: request.body
        )
    }

    /// Success needs no body: 200 or 204 both count.
    public var acknowledgement: WebhookReply { WebhookReply(status: 204, contentType: nil, body: []) }

    /// WeChat Pay's own failure shape, `{"code":"FAIL","message":…}` (message at most 64 characters),
    /// with a 4xx for a refusal and a 500 for our own trouble; any of them makes it retry.
    public func failure(_ rejection: WebhookRejection?) -> WebhookReply {
        let message = String((rejection?.message ?? "temporarily unavailable, retry later").prefix(64))
        return .json(rejection?.status ?? 500, #"{"code":"FAIL","message":\#(jsonString(message))}"#)
    }

    /// Opens the AEAD resource. A wrong key, nonce, associated data or tag is the same failure: the
    /// resource was not sealed with our APIv3 key for this notification.
    private func decrypt(_ resource: Notification.Resource) throws(WebhookRejection) -> [UInt8] {
        guard let sealed = Data(base64Encoded: resource.ciphertext), sealed.count >= 16 else {
            throw WebhookRejection(.malformedPayload, "resource.ciphertext is not base64 of ciphertext and tag")
        }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: Array(resource.nonce.utf8)),
                ciphertext: sealed.dropLast(16),
                tag: sealed.suffix(16)
            )
            return try Array(
                AES.GCM.open(
                    box,
                    using: SymmetricKey(data: self.apiV3Key),
                    authenticating: Array((resource.associatedData ?? "").utf8)
                )
            )
        } catch {
            throw WebhookRejection(.invalidSignature, "resource does not decrypt with the APIv3 key")
        }
    }

    private struct Notification: Decodable {
        let id: String
        let eventType: String
        let resource: Resource

        struct Resource: Decodable {
            let algorithm: String
            let ciphertext: String
            /// May be absent or empty; either way the associated data is empty.
            let associatedData: String?
            let nonce: String

            enum CodingKeys: String, CodingKey {
                case algorithm, ciphertext, nonce
                case associatedData = "associated_data"
            }
        }

        enum CodingKeys: String, CodingKey {
            case id, resource
            case eventType = "event_type"
        }
    }

    /// The decrypted resource of a `REFUND.*` notification (`REFUND.SUCCESS`, `.ABNORMAL`, `.CLOSED`).
    private struct Refund: Decodable {
        let outTradeNo: String?
        let refundStatus: String
        let amount: Amount?

        /// Amounts in fen: `total` is the order's, `refund` this refund's. The notification names
        /// no currency; WeChat Pay v3 domestic payments are in CNY.
        struct Amount: Decodable {
            let total: Int64?
            let refund: Int64?
        }

        /// Only a successful refund of the whole order counts. A partial refund (`refund` less than
        /// `total`) is acknowledged and ignored, as for the other providers: the order stays paid.
        /// Each notification reports its own refund only, so several partial refunds that add up to
        /// the total never mark the order refunded.
        var event: PaymentEvent? {
            guard self.refundStatus == "SUCCESS" else { return nil }
            if let total = self.amount?.total, let refund = self.amount?.refund, refund < total { return nil }
            return PaymentEvent(kind: .refunded, paid: self.amount?.refund.map { Money(amount: $0, currency: "CNY") })
        }

        enum CodingKeys: String, CodingKey {
            case amount
            case outTradeNo = "out_trade_no"
            case refundStatus = "refund_status"
        }
    }
}
