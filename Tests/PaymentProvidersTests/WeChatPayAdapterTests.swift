import Crypto
import Foundation
import PaymentProviders
import Payments
import Testing
import _CryptoExtras

@Suite("WeChatPayAdapter")
struct WeChatPayAdapterTests {
    private static let certificateSerial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    private static let publicKeyID = "PUB_KEY_ID_0000000000000024101100397200000006"
    private static let apiV3Key = Array("0123456789abcdefghijklmnopqrstuv".utf8)

    private let now = Date(timeIntervalSince1970: 1_790_000_000)
    private let adapter = WeChatPayAdapter(
        platformKeys: [
            Self.certificateSerial: TestKeys.first.publicKey,
            Self.publicKeyID: TestKeys.second.publicKey,
        ],
        apiV3Key: Self.apiV3Key,
        tolerance: 300
    )

    /// The base64 of `plaintext` sealed as WeChat Pay seals a resource.
    private static func seal(
        _ plaintext: String,
        key: [UInt8] = Self.apiV3Key,
        nonce: String = "fdasflkja484",
        associatedData: String = "transaction"
    ) -> String {
        let box = try! AES.GCM.seal(
            Array(plaintext.utf8),
            using: SymmetricKey(data: key),
            nonce: AES.GCM.Nonce(data: Array(nonce.utf8)),
            authenticating: Array(associatedData.utf8)
        )
        return (box.ciphertext + box.tag).base64EncodedString()
    }

    /// A notification body whose resource is `plaintext`, encrypted.
    private func body(
        eventType: String = "TRANSACTION.SUCCESS",
        plaintext: String,
        key: [UInt8] = Self.apiV3Key,
        associatedData: String? = "transaction"
    ) -> String {
        let aad = associatedData.map { #","associated_data":"\#($0)""# } ?? ""
        return #"{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":"#
            + #""encrypt-resource","event_type":"\#(eventType)","summary":"支付成功","resource":{"#
            + #""original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"#
            + #""\#(Self.seal(plaintext, key: key, associatedData: associatedData ?? ""))"\#(aad),"#
            + #""nonce":"fdasflkja484"}}"#
    }

    private func transaction(_ state: String, extra: String = "") -> String {
        #"{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"ord_1","#
            + #""transaction_id":"1217752501201407033233368018","trade_type":"JSAPI","trade_state":"\#(state)","#
            + #""amount":{"total":1999,"payer_total":1899,"currency":"CNY","payer_currency":"CNY"}\#(extra)}"#
    }

    private func request(
        _ body: String,
        key: _RSA.Signing.PrivateKey = TestKeys.first,
        serial: String = Self.certificateSerial,
        timestamp: Int = 1_790_000_000,
        nonce: String = "593BEC0C930BF1AFEB40B4A08C8FB242",
        signature: String? = nil
    ) -> WebhookRequest {
        let message = Array("\(timestamp)\n\(nonce)\n\(body)\n".utf8)
        return WebhookRequest(
            headers: [
                "Wechatpay-Timestamp": "\(timestamp)",
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": signature ?? rsaSignature(message, key: key),
                "Wechatpay-Serial": serial,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            ],
            body: Array(body.utf8)
        )
    }

    private func rejection(_ request: WebhookRequest, adapter: WeChatPayAdapter? = nil) -> WebhookRejection? {
        #expect(throws: WebhookRejection.self) { try (adapter ?? self.adapter).verify(request, now: self.now) }
    }

    /// A signed TRANSACTION.SUCCESS decrypts and maps to success with `amount.total` (not `payer_total`).
    @Test func validDelivery() throws {
        let body = self.body(plaintext: self.transaction("SUCCESS"))
        let delivery = try self.adapter.verify(self.request(body), now: self.now)
        #expect(delivery.provider == .wechatpay)
        #expect(delivery.eventID == "EV-2018022511223320873")
        #expect(delivery.eventType == "TRANSACTION.SUCCESS")
        #expect(delivery.orderReference == "ord_1")
        #expect(delivery.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY")))
        #expect(delivery.rawBody == Array(body.utf8))
    }

    /// Every `trade_state` maps to its kind; a state the service does not know maps to no event.
    @Test(arguments: [
        ("USERPAYING", PaymentEvent(kind: .processing)),
        ("PAYERROR", PaymentEvent(kind: .failed, message: "银行卡余额不足")),
        ("CLOSED", PaymentEvent(kind: .canceled)),
        ("REVOKED", PaymentEvent(kind: .canceled)),
        ("REFUND", PaymentEvent(kind: .refunded)),
        ("NOTPAY", PaymentEvent(kind: .awaitingPayment)),
        ("SOMETHING_NEW", nil),
    ])
    func tradeStates(state: String, expected: PaymentEvent?) throws {
        let plaintext = self.transaction(state, extra: #","trade_state_desc":"银行卡余额不足""#)
        let delivery = try self.adapter.verify(self.request(self.body(plaintext: plaintext)), now: self.now)
        #expect(delivery.event == expected)
        #expect(delivery.orderReference == "ord_1")
    }

    /// A successful full refund is a refund; a partial one, or an abnormal or closed refund, is ignored.
    @Test(arguments: [
        ("REFUND.SUCCESS", "SUCCESS", 999, PaymentEvent(kind: .refunded, paid: Money(amount: 999, currency: "CNY"))),
        ("REFUND.SUCCESS", "SUCCESS", 500, nil),
        ("REFUND.ABNORMAL", "ABNORMAL", 999, nil),
        ("REFUND.CLOSED", "CLOSED", 999, nil),
    ])
    func refunds(eventType: String, status: String, refunded: Int, expected: PaymentEvent?) throws {
        let plaintext =
            #"{"mchid":"1900000100","transaction_id":"1008450740201411110005820873","out_trade_no":"ord_1","#
            + #""refund_id":"50200207182018070300011301001","out_refund_no":"7752501201407033233368018","#
            + #""refund_status":"\#(status)","success_time":"2018-06-08T10:34:56+08:00","#
            + #""amount":{"total":999,"refund":\#(refunded),"payer_total":999,"payer_refund":\#(refunded)}}"#
        let body = self.body(eventType: eventType, plaintext: plaintext, associatedData: "refund")
        let delivery = try self.adapter.verify(self.request(body), now: self.now)
        #expect(delivery.event == expected)
        #expect(delivery.orderReference == "ord_1")
        #expect(delivery.eventType == eventType)
    }

    /// An event type the service does not act on is decrypted, then acknowledged without an event.
    @Test func unknownTypeIsIgnored() throws {
        let body = self.body(
            eventType: "COMPLAINT.CREATE",
            plaintext: #"{"complaint_id":"200201820200101080076610000"}"#
        )
        let delivery = try self.adapter.verify(self.request(body), now: self.now)
        #expect(delivery.event == nil)
        #expect(delivery.orderReference == nil)
        #expect(delivery.eventType == "COMPLAINT.CREATE")
    }

    /// A callback signed with the WeChat Pay public key (`PUB_KEY_ID_…`) verifies beside the certificate's.
    @Test func secondKey() throws {
        let body = self.body(plaintext: self.transaction("SUCCESS"))
        let delivery = try self.adapter.verify(
            self.request(body, key: TestKeys.second, serial: Self.publicKeyID),
            now: self.now
        )
        #expect(delivery.event?.kind == .succeeded)
    }

    /// A tampered body, a key that does not match the serial, or an unknown serial fail as bad signatures.
    @Test func tamperedOrWrongKey() {
        let body = self.body(plaintext: self.transaction("SUCCESS"))
        let signed = self.request(body)
        let tampered = WebhookRequest(
            headers: signed.headers,
            body: Array(body.replacingOccurrences(of: "EV-", with: "EW-").utf8)
        )
        #expect(self.rejection(tampered)?.reason == .invalidSignature)
        #expect(self.rejection(self.request(body, key: TestKeys.second))?.reason == .invalidSignature)
        #expect(self.rejection(self.request(body, key: TestKeys.attacker))?.status == 401)
        let unknown = self.rejection(
            self.request(body, key: TestKeys.attacker, serial: "7132D72A03E93CDDF8C03BBD1F37EEDF")
        )
        #expect(unknown?.reason == .invalidSignature)
        #expect(unknown?.message.contains("7132D72A03E93CDDF8C03BBD1F37EEDF") == true)
    }

    /// WeChat Pay's `WECHATPAY/SIGNTEST/` probes, and other non-signatures, fail as invalid signatures.
    @Test(arguments: [
        "WECHATPAY/SIGNTEST/" + Data(repeating: 7, count: 256).base64EncodedString(),
        "WECHATPAY/SIGNTEST/aW52YWxpZA==", "not base64 at all!", "AAAA", Data(count: 256).base64EncodedString(),
    ])
    func badSignatures(signature: String) {
        let request = self.request(self.body(plaintext: self.transaction("SUCCESS")), signature: signature)
        #expect(self.rejection(request)?.reason == .invalidSignature)
    }

    /// Timestamps beyond the tolerance are refused in both directions, the ends of the range too
    /// (their age does not fit an `Int`); the edges are accepted.
    @Test(arguments: [
        (-301, false), (-300, true), (300, true), (301, false), (-86_400, false), (86_400, false),
        (Int.min, false), (Int.max - 1_790_000_000, false),
    ])
    func timestampWindow(offset: Int, accepted: Bool) {
        let request = self.request(self.body(plaintext: self.transaction("SUCCESS")), timestamp: 1_790_000_000 + offset)
        if accepted {
            #expect(throws: Never.self) { try self.adapter.verify(request, now: self.now) }
        } else {
            #expect(self.rejection(request)?.reason == .timestampOutOfTolerance)
        }
    }

    /// Any of the four headers missing or empty, or a timestamp that is not seconds, is a missing signature.
    @Test(arguments: [
        ("Wechatpay-Timestamp", nil), ("Wechatpay-Nonce", nil), ("Wechatpay-Signature", nil), ("Wechatpay-Serial", nil),
        ("Wechatpay-Serial", ""), ("Wechatpay-Timestamp", "17900000OO"), ("Wechatpay-Timestamp", "1.79e9"),
        ("Wechatpay-Timestamp", "99999999999999999999999"),
    ])
    func malformedHeaders(name: String, value: String?) {
        let signed = self.request(self.body(plaintext: self.transaction("SUCCESS")))
        var headers = signed.headers
        headers[name.lowercased()] = value
        let rejection = self.rejection(WebhookRequest(headers: headers, body: signed.body))
        #expect(rejection?.reason == .missingSignature)
        #expect(rejection?.status == 401)
    }

    /// A signature type other than WECHATPAY2-SHA256-RSA2048 is refused; an absent one means that type.
    @Test func signatureType() throws {
        let signed = self.request(self.body(plaintext: self.transaction("SUCCESS")))
        var headers = signed.headers
        headers["wechatpay-signature-type"] = "WECHATPAY2-SM2-WITH-SM3"
        #expect(self.rejection(WebhookRequest(headers: headers, body: signed.body))?.reason == .invalidSignature)
        headers["wechatpay-signature-type"] = nil
        _ = try self.adapter.verify(WebhookRequest(headers: headers, body: signed.body), now: self.now)
    }

    /// Correctly signed bodies that are not notifications, or whose transaction is not one, are 400s.
    @Test(arguments: [
        "", "not json", "[]", #"{"id":"e","event_type":"TRANSACTION.SUCCESS"}"#,
        #"{"id":"","event_type":"X","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"","nonce":"n"}}"#,
        #"{"id":"e","event_type":"X","resource":{"algorithm":"AES_128_CBC","ciphertext":"AAAA","nonce":"n"}}"#,
        #"{"id":"e","event_type":"X","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"%%%","nonce":"n"}}"#,
        #"{"id":"e","event_type":"X","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"n"}}"#,
    ])
    func malformedBodies(body: String) {
        let rejection = self.rejection(self.request(body))
        #expect(rejection?.reason == .malformedPayload)
        #expect(rejection?.status == 400)
    }

    /// A decrypted transaction that is not JSON, or lacks `trade_state`, is malformed.
    @Test(arguments: ["Hello World", #"{"out_trade_no":"ord_1"}"#, #"{"trade_state":7}"#])
    func malformedTransactions(plaintext: String) {
        #expect(self.rejection(self.request(self.body(plaintext: plaintext)))?.reason == .malformedPayload)
    }

    /// A resource sealed with another key, or with other associated data, does not decrypt (invalid signature).
    @Test func resourceDoesNotDecrypt() {
        let otherKey = self.body(plaintext: self.transaction("SUCCESS"), key: Array(repeating: 1, count: 32))
        let rejection = self.rejection(self.request(otherKey))
        #expect(rejection?.reason == .invalidSignature)
        #expect(rejection?.message.contains("decrypt") == true)
        let otherData = self.body(plaintext: self.transaction("SUCCESS"))
            .replacingOccurrences(of: #""associated_data":"transaction""#, with: #""associated_data":"refund""#)
        #expect(self.rejection(self.request(otherData))?.reason == .invalidSignature)
    }

    /// Absent or empty associated data both mean an empty AAD.
    @Test func emptyAssociatedData() throws {
        for body in [
            self.body(plaintext: self.transaction("SUCCESS"), associatedData: nil),
            self.body(plaintext: self.transaction("SUCCESS"), associatedData: ""),
        ] {
            #expect(try self.adapter.verify(self.request(body), now: self.now).event?.kind == .succeeded)
        }
    }

    /// wechatpay-go's full notification verifies with its certificate, decrypts with its 16-byte APIv3 key.
    @Test func publishedNotification() throws {
        let vector = WeChatPayNotifyVector.self
        let adapter = try WeChatPayAdapter(
            platformKeyTexts: [vector.serial: vector.certificate],
            apiV3Key: vector.apiV3Key,
            tolerance: 300
        )
        let headers = [
            "Wechatpay-Timestamp": vector.timestamp, "Wechatpay-Nonce": vector.nonce,
            "Wechatpay-Signature": vector.signature, "Wechatpay-Serial": vector.serial,
        ]
        let now = Date(timeIntervalSince1970: 1_624_523_846)
        let delivery = try adapter.verify(WebhookRequest(headers: headers, body: Array(vector.body.utf8)), now: now)
        #expect(delivery.eventID == "3119dfba-e649-5eec-ab1e-3412bc4d2e17")
        #expect(delivery.eventType == "PAYSCORE.USER_OPEN_SERVICE")
        #expect(delivery.event == nil)

        // The same delivery under a wrong APIv3 key: the signature holds, the resource does not open.
        let wrongKey = try WeChatPayAdapter(
            platformKeyTexts: [vector.serial: vector.certificate],
            apiV3Key: "testMchAPIv3Key1",
            tolerance: 300
        )
        let refused = #expect(throws: WebhookRejection.self) {
            try wrongKey.verify(WebhookRequest(headers: headers, body: Array(vector.body.utf8)), now: now)
        }
        #expect(refused?.message.contains("decrypt") == true)
        let tampered = Array(vector.body.replacingOccurrences(of: "签约成功", with: "签约失败").utf8)
        let forged = #expect(throws: WebhookRejection.self) {
            try adapter.verify(WebhookRequest(headers: headers, body: tampered), now: now)
        }
        #expect(forged?.reason == .invalidSignature)
    }

    /// wechatpay-go's RSA vector verifies with the key read from its certificate and from its bare PEM.
    @Test func publishedRSASignature() throws {
        let vector = WeChatPayRSAVector.self
        let signature = try #require(Data(base64Encoded: vector.signature))
        for text in [vector.certificate, vector.publicKey] {
            let key = try _RSA.Signing.PublicKey(providerText: text)
            #expect(key.isValidPKCS1SHA256Signature(Array(signature), for: Array(vector.message.utf8)))
            #expect(!key.isValidPKCS1SHA256Signature(Array(signature), for: Array("wrong source".utf8)))
        }
    }

    /// wechatpay-go's AES-GCM vector opens through the adapter (unknown type) and fails under another key.
    @Test func publishedAESVector() throws {
        let vector = WeChatPayAESVector.self
        func body(_ eventType: String) -> String {
            #"{"id":"EV-1","event_type":"\#(eventType)","resource":{"algorithm":"AEAD_AES_256_GCM","#
                + #""ciphertext":"\#(vector.ciphertext)","associated_data":"\#(vector.associatedData)","#
                + #""nonce":"\#(vector.nonce)"}}"#
        }
        func adapter(_ apiV3Key: String) -> WeChatPayAdapter {
            WeChatPayAdapter(
                platformKeys: [Self.certificateSerial: TestKeys.first.publicKey],
                apiV3Key: Array(apiV3Key.utf8),
                tolerance: 300
            )
        }
        let opened = try adapter(vector.apiV3Key).verify(self.request(body("TEST.HELLO")), now: self.now)
        #expect(opened.event == nil)
        // "Hello World" decrypts, but is no transaction.
        let notJSON = self.rejection(self.request(body("TRANSACTION.SUCCESS")), adapter: adapter(vector.apiV3Key))
        #expect(notJSON?.reason == .malformedPayload)
        let wrongKey = self.rejection(self.request(body("TEST.HELLO")), adapter: adapter("testAPIv3Key1111"))
        #expect(wrongKey?.reason == .invalidSignature)
    }

    /// Key text is read as a certificate or a PEM public key; unusable text or APIv3 keys are refused.
    @Test func keyTexts() throws {
        _ = try WeChatPayAdapter(
            platformKeyTexts: [
                "F5765756002FDD77": WeChatPayRSAVector.certificate, "PUB_KEY_ID_1": WeChatPayRSAVector.publicKey,
            ],
            apiV3Key: "0123456789abcdefghijklmnopqrstuv",
            tolerance: 300
        )
        for (texts, apiV3Key) in [
            (["S": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"], "0123456789abcdefghijklmnopqrstuv"),
            (["S": "not a key"], "0123456789abcdefghijklmnopqrstuv"),
            ([:], "0123456789abcdefghijklmnopqrstuv"),
            (["S": WeChatPayRSAVector.publicKey], "short"),
        ] {
            #expect(throws: ProviderKeyError.self) {
                try WeChatPayAdapter(platformKeyTexts: texts, apiV3Key: apiV3Key, tolerance: 300)
            }
        }
    }

    /// Success is an empty 204; refusals and our trouble are WeChat Pay's `{"code":"FAIL"}` with 4xx/500.
    @Test func replies() {
        #expect(self.adapter.acknowledgement == WebhookReply(status: 204, contentType: nil, body: []))
        let refused = self.adapter.failure(WebhookRejection(.invalidSignature, String(repeating: "x", count: 100)))
        #expect(refused.status == 401)
        #expect(
            String(decoding: refused.body, as: UTF8.self)
                == #"{"code":"FAIL","message":"\#(String(repeating: "x", count: 64))"}"#
        )
        let ours = self.adapter.failure(nil)
        #expect(ours.status == 500)
        #expect(String(decoding: ours.body, as: UTF8.self).hasPrefix(#"{"code":"FAIL","message":"#))
    }
}
