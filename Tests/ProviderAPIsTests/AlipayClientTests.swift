import Foundation
import PaymentProviders
import Payments
import ProviderAPIs
import Testing
import _CryptoExtras

/// The Alipay client against a local gateway that checks the request's sign with the app's public
/// key and signs its answers as Alipay would.
@Suite struct AlipayClientTests {
    static let trade = TradeReference(orderID: "order-1", paymentID: nil)

    static func client(_ baseURL: String, _ http: ProviderHTTP) throws -> AlipayClient {
        try AlipayClient(
            configuration: .init(
                gatewayURL: ProviderBaseURL(baseURL + "/gateway.do", allowPlainHTTP: true),
                appID: "2021000122671080",
                appPrivateKey: TestKeys.alipayApp,
                alipayPublicKeys: [TestKeys.alipay.publicKey],
                // Long, as WeChatPayClientTests.client explains.
                timeout: .seconds(60)
            ),
            http: http
        )
    }

    /// The parameters of a request: its query string and form body, decoded.
    static func parameters(_ request: ReceivedRequest) -> [String: String] {
        let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let form = String(decoding: request.body, as: UTF8.self)
        var parameters: [String: String] = [:]
        for pair in (query + "&" + form).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            if parts.count == 2 { parameters[parts[0]] = parts[1] }
        }
        return parameters
    }

    /// Whether the request's sign is the app key's over every other parameter.
    static func isSignedByApp(_ request: ReceivedRequest) -> Bool {
        var parameters = Self.parameters(request)
        guard let sign = parameters.removeValue(forKey: "sign"), let signature = Data(base64Encoded: sign) else {
            return false
        }
        return TestKeys.alipayApp.publicKey.isValidPKCS1SHA256Signature(
            Array(signature),
            for: AlipaySignature.content(parameters)
        )
    }

    /// An answer to the request's method holding `content`, signed by `key` unless `signed` is false.
    static func answer(
        _ request: ReceivedRequest,
        _ content: String,
        key: _RSA.Signing.PrivateKey = TestKeys.alipay,
        signed: Bool = true
    ) -> CannedResponse {
        let responseKey = AlipaySignature.responseKey(method: Self.parameters(request)["method"] ?? "")
        let sign = signed ? #","sign":"\#(key.sign(Array(content.utf8)))""# : ""
        return CannedResponse(status: 200, json: #"{"\#(responseKey)":\#(content)\#(sign)}"#)
    }

    /// Answers with `content(method)` to correctly signed requests for app 2021000122671080 and order-1.
    static func gateway(
        signed: Bool = true,
        key: _RSA.Signing.PrivateKey = TestKeys.alipay,
        _ content: @escaping @Sendable (String, Int) -> String
    ) -> TestHTTPServer.Handler {
        { request, index in
            let parameters = Self.parameters(request)
            guard request.method == "POST", request.path == "/gateway.do", Self.isSignedByApp(request),
                parameters["app_id"] == "2021000122671080", parameters["biz_content"] == #"{"out_trade_no":"order-1"}"#,
                parameters["charset"] == "utf-8", parameters["sign_type"] == "RSA2", parameters["version"] == "1.0"
            else {
                return Self.answer(
                    request,
                    #"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}"#
                )
            }
            return Self.answer(request, content(parameters["method"] ?? "", index), key: key, signed: signed)
        }
    }

    /// A signed TRADE_SUCCESS is a success with total_amount in fen; the request is signed over every parameter.
    @Test func tradeSuccess() async throws {
        let content =
            #"{"code":"10000","msg":"Success","out_trade_no":"order-1","trade_no":"2024","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#
        try await withClient(Self.client, answering: Self.gateway { _, _ in content }) { client, server in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 8_888, currency: "CNY")))
            #expect(result.providerState == "TRADE_SUCCESS")
            #expect(Self.parameters(try #require(server.requests.first))["method"] == "alipay.trade.query")
        }
    }

    /// WAIT_BUYER_PAY, TRADE_FINISHED and TRADE_CLOSED read as awaiting payment, succeeded and canceled.
    @Test(arguments: [
        ("WAIT_BUYER_PAY", PaymentEvent.Kind.awaitingPayment), ("TRADE_FINISHED", .succeeded),
        ("TRADE_CLOSED", .canceled),
    ])
    func tradeStatuses(status: String, kind: PaymentEvent.Kind) async throws {
        let content =
            #"{"code":"10000","msg":"Success","out_trade_no":"order-1","trade_status":"\#(status)","total_amount":"1.00"}"#
        try await withClient(Self.client, answering: Self.gateway { _, _ in content }) { client, _ in
            let answer101 = try await client.query(Self.trade, now: Date())
            #expect(answer101.event?.kind == kind)
        }
    }

    /// A signed 40004 ACQ.TRADE_NOT_EXIST (a QR code nobody scanned) is no payment: a result without an event.
    @Test func tradeNotExist() async throws {
        let content = #"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#
        try await withClient(Self.client, answering: Self.gateway { _, _ in content }) { client, _ in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == nil)
            #expect(result.providerState == "ACQ.TRADE_NOT_EXIST")
            #expect(try await client.close(Self.trade, now: Date()) == .notFound)
        }
    }

    /// An unsigned answer, success or ACQ.TRADE_NOT_EXIST alike, or one signed by another key, is unverified.
    @Test(arguments: [
        (
            #"{"code":"10000","msg":"Success","out_trade_no":"order-1","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#,
            false
        ),
        (#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#, false),
        (
            #"{"code":"10000","msg":"Success","out_trade_no":"order-1","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#,
            true
        ),
    ])
    func unverifiedAnswers(content: String, signedByStranger: Bool) async throws {
        let handler =
            signedByStranger
            ? Self.gateway(key: TestKeys.stranger) { _, _ in content } : Self.gateway(signed: false) { _, _ in content }
        try await withClient(Self.client, answering: handler) { client, server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error?.isUnverified == true, "\(String(describing: error))")
            #expect(server.requests.count == 1)
        }
    }

    /// A signed answer whose text was changed in transit is unverified.
    @Test func tamperedAnswer() async throws {
        let handler: TestHTTPServer.Handler = { request, _ in
            let signedContent = #"{"code":"10000","out_trade_no":"order-1","trade_status":"WAIT_BUYER_PAY"}"#
            let sent = #"{"code":"10000","out_trade_no":"order-1","trade_status":"TRADE_SUCCESS"}"#
            return CannedResponse(
                status: 200,
                json:
                    #"{"alipay_trade_query_response":\#(sent),"sign":"\#(TestKeys.alipay.sign(Array(signedContent.utf8)))"}"#
            )
        }
        try await withClient(Self.client, answering: handler) { client, _ in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error?.isUnverified == true)
        }
    }

    /// Close: 10000 closes, ACQ.TRADE_STATUS_ERROR is refused, 40002/40001/40006 are rejected.
    @Test(arguments: [
        (#"{"code":"10000","msg":"Success","out_trade_no":"order-1","trade_no":"2024"}"#, "closed"),
        (
            #"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"交易状态不合法"}"#,
            "refused ACQ.TRADE_STATUS_ERROR"
        ),
        (
            #"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#,
            "rejected 40002 isv.invalid-signature"
        ),
        (
            #"{"code":"40001","msg":"Missing Required Arguments","sub_code":"isv.missing-app-id"}"#,
            "rejected 40001 isv.missing-app-id"
        ),
        (
            #"{"code":"40006","msg":"Insufficient Permissions","sub_code":"isv.insufficient-isv-permissions"}"#,
            "rejected 40006 isv.insufficient-isv-permissions"
        ),
    ])
    func closeAnswers(content: String, expected: String) async throws {
        try await withClient(Self.client, answering: Self.gateway { _, _ in content }) { client, server in
            let outcome = await closeOutcome { () async throws(ProviderCallError) in
                try await client.close(Self.trade, now: Date())
            }
            #expect(outcome == expected)
            let first = try #require(server.requests.first)
            #expect(Self.parameters(first)["method"] == "alipay.trade.close")
        }
    }

    /// 20000 and ACQ.SYSTEM_ERROR are retried, signed or not, then unavailable after three requests; a later success is taken.
    @Test func systemErrorsAreRetried() async throws {
        try await withClient(
            Self.client,
            answering: Self.gateway(signed: false) { _, _ in
                #"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#
            }
        ) { client, server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.close(Self.trade, now: Date())
            }
            #expect(error?.isUnavailable == true)
            #expect(server.requests.count == 3)
        }
        try await withClient(
            Self.client,
            answering: Self.gateway { _, index in
                index == 0
                    ? #"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR"}"#
                    : #"{"code":"10000","msg":"Success","out_trade_no":"order-1"}"#
            }
        ) { client, server in
            let answer187 = try await client.close(Self.trade, now: Date())
            #expect(answer187 == .closed)
            #expect(server.requests.count == 2)
        }
    }

    /// An answer about another order, or with an unknown status, is rejected rather than believed.
    @Test func otherOrderAndUnknownStatus() async throws {
        try await withClient(
            Self.client,
            answering: Self.gateway { _, index in
                index == 0
                    ? #"{"code":"10000","out_trade_no":"order-2","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#
                    : #"{"code":"10000","out_trade_no":"order-1","trade_status":"TRADE_PENDING"}"#
            }
        ) { client, _ in
            let first = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(first?.rejectedCode == "OTHER_ORDER")
            let second = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(second?.rejectedCode == "UNKNOWN_TRADE_STATUS")
        }
    }

    /// The configuration reads the fixture keys from text and refuses a non-numeric app id or no Alipay key.
    @Test func configurationFromText() throws {
        let configuration = try AlipayClient.Configuration(
            appID: "2021000122671080",
            appPrivateKeyText: TestKeys.alipayAppPEM,
            alipayPublicKeyTexts: [TestKeys.alipayPublicPEM]
        )
        #expect(configuration.gatewayURL.description == "https://openapi.alipay.com/gateway.do")
        #expect(throws: ProviderConfigurationError.self) {
            try AlipayClient.Configuration(
                appID: "app",
                appPrivateKeyText: TestKeys.alipayAppPEM,
                alipayPublicKeyTexts: [TestKeys.alipayPublicPEM]
            )
        }
        #expect(throws: ProviderConfigurationError.self) {
            try AlipayClient.Configuration(
                appID: "1",
                appPrivateKeyText: TestKeys.alipayAppPEM,
                alipayPublicKeyTexts: []
            )
        }
    }
}
