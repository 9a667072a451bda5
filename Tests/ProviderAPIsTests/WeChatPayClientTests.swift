import Foundation
import NIOHTTP1
import PaymentProviders
import Payments
import ProviderAPIs
import Testing
import _CryptoExtras

/// The WeChat Pay client against a local server that checks the client's signature with the
/// merchant's public key and signs its answers as WeChat Pay would.
@Suite struct WeChatPayClientTests {
    static let platformSerial = "PUB_KEY_ID_0114232134912410000000000000"
    static let trade = TradeReference(orderID: "order-1", paymentID: nil)

    static func client(_ baseURL: String, _ http: ProviderHTTP) throws -> WeChatPayClient {
        // Long: when the test run starts, the machine can be busy for seconds, and an attempt cut
        // off by its deadline is retried, which the request counts here would take for a bug.
        try Self.client(baseURL, http, timeout: .seconds(60))
    }

    /// A client whose attempts end after 150 ms.
    static func impatientClient(_ baseURL: String, _ http: ProviderHTTP) throws -> WeChatPayClient {
        try Self.client(baseURL, http, timeout: .milliseconds(150))
    }

    static func client(_ baseURL: String, _ http: ProviderHTTP, timeout: Duration) throws -> WeChatPayClient {
        try WeChatPayClient(
            configuration: .init(
                baseURL: ProviderBaseURL(baseURL, allowPlainHTTP: true),
                merchantID: "1230000109",
                merchantSerial: "MERCHANT0001",
                merchantPrivateKey: TestKeys.merchant,
                platformKeys: [Self.platformSerial: TestKeys.platform.publicKey],
                timeout: timeout
            ),
            http: http
        )
    }

    /// An answer signed as WeChat Pay signs: by `key`, over `signedBody` (the body sent unless tampered with).
    static func signed(
        _ status: Int,
        _ body: String,
        key: _RSA.Signing.PrivateKey = TestKeys.platform,
        serial: String = Self.platformSerial,
        age: TimeInterval = 0,
        signedBody: String? = nil
    ) -> CannedResponse {
        let timestamp = String(Int64(Date().timeIntervalSince1970 - age))
        let nonce = WeChatPayClient.nonce()
        let message = WeChatPaySignature.responseMessage(
            timestamp: timestamp,
            nonce: nonce,
            body: Array((signedBody ?? body).utf8)
        )
        return CannedResponse(
            status: status,
            headers: [
                ("Content-Type", "application/json"), ("Wechatpay-Timestamp", timestamp), ("Wechatpay-Nonce", nonce),
                ("Wechatpay-Signature", key.sign(message)), ("Wechatpay-Serial", serial),
            ],
            body: Array(body.utf8)
        )
    }

    /// Whether the request carries a valid merchant signature over what was sent.
    static func isSignedByMerchant(_ request: ReceivedRequest) -> Bool {
        guard let header = request.headers.first(name: "Authorization"),
            let authorization = WeChatPaySignature.Authorization(header: header),
            authorization.merchantID == "1230000109", authorization.serial == "MERCHANT0001",
            let signature = Data(base64Encoded: authorization.signature)
        else { return false }
        let message = WeChatPaySignature.requestMessage(
            method: request.method,
            target: request.uri,
            timestamp: authorization.timestamp,
            nonce: authorization.nonce,
            body: request.body
        )
        return TestKeys.merchant.publicKey.isValidPKCS1SHA256Signature(Array(signature), for: message)
    }

    /// Answers `response` to correctly signed requests, 401 SIGN_ERROR to others.
    static func checking(_ response: @escaping @Sendable (ReceivedRequest, Int) -> CannedResponse)
        -> TestHTTPServer.Handler
    {
        { request, index in
            guard Self.isSignedByMerchant(request) else {
                return CannedResponse(status: 401, json: #"{"code":"SIGN_ERROR","message":"签名错误"}"#)
            }
            return response(request, index)
        }
    }

    static let paid =
        #"{"mchid":"1230000109","out_trade_no":"order-1","transaction_id":"4200001","trade_state":"SUCCESS","trade_state_desc":"支付成功","amount":{"total":100,"currency":"CNY"}}"#

    /// A signed SUCCESS answer becomes a success with the amount paid, from a request signed as sent.
    @Test func verifiedQuery() async throws {
        try await withClient(Self.client, answering: Self.checking { _, _ in Self.signed(200, Self.paid) }) {
            client,
            server in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 100, currency: "CNY")))
            #expect(result.providerState == "SUCCESS")
            #expect(result.rawBody == Array(Self.paid.utf8))
            let request = try #require(server.requests.first)
            #expect(request.method == "GET")
            #expect(request.uri == "/v3/pay/transactions/out-trade-no/order-1?mchid=1230000109")
            #expect(request.headers.first(name: "Wechatpay-Serial") == Self.platformSerial)
        }
    }

    /// NOTPAY, CLOSED and USERPAYING read as awaiting payment, canceled and processing.
    @Test(arguments: [
        ("NOTPAY", PaymentEvent.Kind.awaitingPayment), ("CLOSED", .canceled), ("USERPAYING", .processing),
    ])
    func tradeStates(state: String, kind: PaymentEvent.Kind) async throws {
        let body = #"{"out_trade_no":"order-1","trade_state":"\#(state)"}"#
        try await withClient(Self.client, answering: Self.checking { _, _ in Self.signed(200, body) }) {
            client,
            _ in
            let answer112 = try await client.query(Self.trade, now: Date())
            #expect(answer112.event?.kind == kind)
        }
    }

    /// An unsigned 2xx, one signed by another key or under an unknown serial, a tampered body and a stale timestamp are all unverified.
    @Test(arguments: ["unsigned", "wrong key", "unknown serial", "tampered", "stale", "future"])
    func forgedAnswersAreUnverified(_ forgery: String) async throws {
        let response: CannedResponse =
            switch forgery {
            case "unsigned": CannedResponse(status: 200, json: Self.paid)
            case "wrong key": Self.signed(200, Self.paid, key: TestKeys.stranger)
            case "unknown serial": Self.signed(200, Self.paid, key: TestKeys.stranger, serial: "PUB_KEY_ID_OTHER")
            case "tampered":
                Self.signed(200, Self.paid, signedBody: Self.paid.replacingOccurrences(of: "SUCCESS", with: "NOTPAY"))
            case "stale": Self.signed(200, Self.paid, age: 3_600)
            default: Self.signed(200, Self.paid, age: -3_600)
            }
        try await withClient(Self.client, answering: Self.checking { _, _ in response }) {
            client,
            server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error?.isUnverified == true, "\(forgery): \(String(describing: error))")
            // Never retried: a retried forgery would be asked three times. (Under load an attempt
            // can time out in transport before its answer is read, and that one is retried.)
            #expect(server.requests.count < 3)
        }
    }

    /// An answer whose trade_state is unknown, or that names another order, is never read as a verdict.
    @Test func unknownStateAndOtherOrderAreRejected() async throws {
        let unknown = #"{"out_trade_no":"order-1","trade_state":"SOMETHING_NEW"}"#
        let other = #"{"out_trade_no":"order-2","trade_state":"SUCCESS","amount":{"total":100,"currency":"CNY"}}"#
        try await withClient(
            Self.client,
            answering: Self.checking { _, index in Self.signed(200, index == 0 ? unknown : other) }
        ) { client, _ in
            let first = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(first?.rejectedCode == "UNKNOWN_TRADE_STATE")
            let second = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(second?.rejectedCode == "OTHER_ORDER")
        }
    }

    /// 404 ORDER_NOT_EXIST is no payment: a result without an event.
    @Test func orderNotExist() async throws {
        try await withClient(
            Self.client,
            answering: Self.checking { _, _ in
                CannedResponse(status: 404, json: #"{"code":"ORDER_NOT_EXIST","message":"订单不存在"}"#)
            }
        ) { client, _ in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == nil)
            #expect(result.providerState == "ORDER_NOT_EXIST")
        }
    }

    /// A signed 204 closes; an unsigned 204 is unverified; the close request is signed over its JSON body.
    @Test func closeAnswers() async throws {
        try await withClient(
            Self.client,
            answering: Self.checking { _, index in index == 0 ? Self.signed(204, "") : CannedResponse(status: 204) }
        ) { client, server in
            #expect(try await client.close(Self.trade, now: Date()) == .closed)
            let error = await callError { () async throws(ProviderCallError) in
                try await client.close(Self.trade, now: Date())
            }
            #expect(error?.isUnverified == true)
            let request = try #require(server.requests.first)
            #expect(request.method == "POST")
            #expect(request.uri == "/v3/pay/transactions/out-trade-no/order-1/close")
            #expect(request.body == Array(#"{"mchid":"1230000109"}"#.utf8))
            #expect(request.headers.first(name: "Content-Type") == "application/json")
        }
    }

    /// Close error answers map to closed, not found, refused or rejected by their code.
    @Test(arguments: [
        (400, "ORDER_CLOSED", "closed"), (404, "ORDER_NOT_EXIST", "notFound"), (400, "ORDERPAID", "refused ORDERPAID"),
        (403, "RULE_LIMIT", "refused RULE_LIMIT"), (400, "TRADE_ERROR", "refused TRADE_ERROR"),
        (401, "SIGN_ERROR", "rejected SIGN_ERROR"), (403, "NO_AUTH", "rejected NO_AUTH"),
        (400, "PARAM_ERROR", "rejected PARAM_ERROR"), (400, "INVALID_REQUEST", "rejected INVALID_REQUEST"),
    ])
    func closeErrors(status: Int, code: String, expected: String) async throws {
        try await withClient(
            Self.client,
            answering: Self.checking { _, _ in
                CannedResponse(status: status, json: #"{"code":"\#(code)","message":"m"}"#)
            }
        ) { client, _ in
            let outcome = await closeOutcome { () async throws(ProviderCallError) in
                try await client.close(Self.trade, now: Date())
            }
            #expect(outcome == expected)
        }
    }

    /// Two 5xx answers then a signed one: the third attempt, signed afresh, succeeds.
    @Test func retriesServerErrors() async throws {
        try await withClient(
            Self.client,
            answering: Self.checking { _, index in
                index < 2
                    ? CannedResponse(status: 500, json: #"{"code":"SYSTEM_ERROR","message":"系统错误"}"#)
                    : Self.signed(200, Self.paid)
            }
        ) { client, server in
            let answer208 = try await client.query(Self.trade, now: Date())
            #expect(answer208.event?.kind == .succeeded)
            let nonces = server.requests.compactMap {
                $0.headers.first(name: "Authorization").flatMap(WeChatPaySignature.Authorization.init(header:))?.nonce
            }
            #expect(nonces.count == 3)
            #expect(Set(nonces).count == 3)
        }
    }

    /// The configuration reads keys from text, and refuses plain http unless asked, a bad mchid, or no platform key.
    @Test func configurationFromText() throws {
        let platform = TestKeys.platform.publicKey.pemRepresentation
        let configuration = try WeChatPayClient.Configuration(
            merchantID: "1230000109",
            merchantSerial: "MERCHANT0001",
            merchantPrivateKeyPEM: TestKeys.weChatPayGoPEM,
            platformKeyTexts: ["PUB_KEY_ID_1": platform]
        )
        #expect(configuration.baseURL.description == "https://api.mch.weixin.qq.com")
        #expect(configuration.platformSerial == "PUB_KEY_ID_1")
        #expect(configuration.timeout == .seconds(10))
        func build(url: String = "https://api.mch.weixin.qq.com", mchid: String = "1230000109", keys: [String: String])
            throws
        {
            _ = try WeChatPayClient.Configuration(
                baseURL: url,
                merchantID: mchid,
                merchantSerial: "MERCHANT0001",
                merchantPrivateKeyPEM: TestKeys.weChatPayGoPEM,
                platformKeyTexts: keys
            )
        }
        #expect(throws: ProviderConfigurationError.self) { try build(url: "http://127.0.0.1:1", keys: ["A": platform]) }
        #expect(throws: ProviderConfigurationError.self) { try build(mchid: "12a", keys: ["A": platform]) }
        #expect(throws: ProviderConfigurationError.self) { try build(keys: [:]) }
        #expect(throws: ProviderConfigurationError.self) { try build(keys: ["A": platform, "B": platform]) }
        #expect(throws: ProviderConfigurationError.self) { try build(keys: ["A": "not a key"]) }
    }
}
