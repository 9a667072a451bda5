import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import PaymentProviders
import Payments
import ProviderEmulator
import ServiceLifecycle
import Synchronization
import TestSupport
import _CryptoExtras

/// The keys of every test: fixed (``TestRSAKeys``), since generating them in a debug build is slow.
enum Keys {
    /// Ours: signs our WeChat Pay requests.
    static let merchant = TestRSAKeys.key(0)
    /// WeChat Pay's: signs its answers and callbacks.
    static let platform = TestRSAKeys.key(1)
    /// Ours: signs our Alipay requests.
    static let alipayApp = TestRSAKeys.key(3)
    /// Alipay's.
    static let alipay = TestRSAKeys.key(4)

    static let merchantID = "1900000000"
    static let platformSerial = "TESTPLATFORMSERIAL"
    static let apiV3Key = "0123456789abcdef0123456789abcdef"
    static let alipayAppID = "2021000000000000"
    static let stripeKey = "sk_test_emulator"
    static let stripeWebhookSecret = "whsec_emulator"
}

/// A clock the test moves.
final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)

    var now: Date { Date().addingTimeInterval(self.offset.withLock { $0 }) }

    func advance(_ seconds: TimeInterval) { self.offset.withLock { $0 += seconds } }
}

func configuration(
    webhookPort: Int = 9,
    closeMinimumAge: Duration = .seconds(300),
    hang: Duration = .milliseconds(300)
) -> EmulatedProviders.Configuration {
    EmulatedProviders.Configuration(
        host: "127.0.0.1",
        port: 0,
        webhookBaseURL: "http://127.0.0.1:\(webhookPort)",
        wechatPay: .init(
            merchantID: Keys.merchantID,
            merchantPublicKey: Keys.merchant.publicKey,
            platformPrivateKey: Keys.platform,
            platformSerial: Keys.platformSerial,
            apiV3Key: Keys.apiV3Key
        ),
        alipay: .init(appID: Keys.alipayAppID, appPublicKey: Keys.alipayApp.publicKey, alipayPrivateKey: Keys.alipay),
        stripe: .init(secretKey: Keys.stripeKey, webhookSecret: Keys.stripeWebhookSecret),
        closeMinimumAge: closeMinimumAge,
        hang: hang,
        callbackRetryDelays: [.milliseconds(100), .milliseconds(100)]
    )
}

/// Runs an emulator on a free port while `body` runs, with a client for it.
func withEmulator<T: Sendable>(
    _ configuration: EmulatedProviders.Configuration = configuration(),
    clock: TestClock = TestClock(),
    _ body: @Sendable (EmulatorClient) async throws -> T
) async throws -> T {
    var logger = Logger(label: "provider-emulator-test")
    logger.logLevel = .warning
    let now: @Sendable () -> Date = { clock.now }
    return try await EmulatedProviders.serve(configuration: configuration, logger: logger, now: now) { port in
        try await body(EmulatorClient(port: port, clock: clock))
    }
}

/// The HTTP methods the tests use.
enum Method: String, Sendable {
    case get = "GET"
    case post = "POST"
    case delete = "DELETE"
}

/// An HTTP answer as received.
struct Answer: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var text: String { String(decoding: self.body, as: UTF8.self) }

    func header(_ name: String) -> String? { self.headers.first(name: name) }

    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.body))) as? [String: Any] ?? [:] }
}

/// Calls to the emulator, signed as our service's clients sign them.
struct EmulatorClient: Sendable {
    let port: Int
    let clock: TestClock

    func send(
        _ method: Method,
        _ target: String,
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        timeout: TimeAmount = .seconds(60)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(self.port)\(target)")
        request.method = HTTPMethod(rawValue: method.rawValue)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: Int(response.status.code),
            headers: response.headers,
            body: Array(bytes.readableBytesView)
        )
    }

    // MARK: Control

    @discardableResult
    func control(_ method: Method, _ path: String, _ json: String? = nil) async throws -> Answer {
        try await self.send(
            method,
            "/control/\(path)",
            headers: json == nil ? [] : [("Content-Type", "application/json")],
            body: Array((json ?? "").utf8)
        )
    }

    /// Opens a trade; its `payment_id`.
    @discardableResult
    func openTrade(_ provider: Provider, _ orderID: String, amount: Int64 = 1999, currency: String = "CNY")
        async throws -> String?
    {
        let answer = try await self.control(
            .post,
            "trades",
            #"{"provider":"\#(provider.rawValue)","order_id":"\#(orderID)","amount":\#(amount),"currency":"\#(currency)"}"#
        )
        guard answer.status == 201 else { throw Unexpected("open \(orderID): \(answer.status) \(answer.text)") }
        return answer.json["payment_id"] as? String
    }

    // MARK: WeChat Pay

    /// A WeChat Pay v3 call signed with `key` (the merchant's by default) at the clock's time.
    func wechatPay(
        _ method: Method,
        _ target: String,
        body: String = "",
        key: _RSA.Signing.PrivateKey = Keys.merchant,
        merchantID: String = Keys.merchantID,
        skew: TimeInterval = 0
    ) async throws -> Answer {
        let timestamp = Int64(self.clock.now.timeIntervalSince1970 + skew)
        let nonce = UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let message = WeChatPaySignature.requestMessage(
            method: method.rawValue,
            target: target,
            timestamp: timestamp,
            nonce: nonce,
            body: Array(body.utf8)
        )
        let authorization = WeChatPaySignature.Authorization(
            merchantID: merchantID,
            nonce: nonce,
            timestamp: timestamp,
            serial: "MERCHANTSERIAL",
            signature: try key.pkcs1SHA256Signature(for: message)
        )
        var headers = [("Authorization", authorization.header), ("Accept", "application/json")]
        if !body.isEmpty { headers.append(("Content-Type", "application/json")) }
        return try await self.send(method, target, headers: headers, body: Array(body.utf8))
    }

    func wechatQuery(_ orderID: String) async throws -> Answer {
        try await self.wechatPay(.get, "/v3/pay/transactions/out-trade-no/\(orderID)?mchid=\(Keys.merchantID)")
    }

    func wechatClose(_ orderID: String) async throws -> Answer {
        try await self.wechatPay(
            .post,
            "/v3/pay/transactions/out-trade-no/\(orderID)/close",
            body: #"{"mchid":"\#(Keys.merchantID)"}"#
        )
    }

    // MARK: Alipay

    /// An Alipay gateway call: the common parameters in the query string, `biz_content` in the form
    /// body, signed with `key` (the app's by default).
    func alipay(_ method: String, orderID: String, key: _RSA.Signing.PrivateKey = Keys.alipayApp) async throws -> Answer
    {
        var parameters = [
            "app_id": Keys.alipayAppID, "method": method, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
            "timestamp": AlipaySignature.beijingTimestamp(self.clock.now), "version": "1.0",
            "biz_content": #"{"out_trade_no":"\#(orderID)"}"#,
        ]
        parameters["sign"] = try key.pkcs1SHA256Signature(for: AlipaySignature.content(parameters))
        let query = parameters.filter { $0.key != "biz_content" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\(formEncode($0.value))" }.joined(separator: "&")
        return try await self.send(
            .post,
            "/gateway.do?\(query)",
            headers: [("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")],
            body: Array("biz_content=\(formEncode(parameters["biz_content"]!))".utf8)
        )
    }

    // MARK: Stripe

    func stripe(
        _ method: Method,
        _ path: String,
        key: String? = Keys.stripeKey,
        idempotencyKey: String? = nil,
        form: String = ""
    ) async throws -> Answer {
        var headers: [(String, String)] = []
        if let key { headers.append(("Authorization", "Bearer \(key)")) }
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        if method == .post { headers.append(("Content-Type", "application/x-www-form-urlencoded")) }
        return try await self.send(method, path, headers: headers, body: Array(form.utf8))
    }
}

/// Form encoding as Alipay's SDKs write it: unreserved characters kept, space as `+`.
func formEncode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._*")
    allowed.insert(" ")
    return (text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text).replacingOccurrences(of: " ", with: "+")
}

/// Whether a WeChat Pay answer carries a platform signature that verifies.
func wechatPaySignatureVerifies(_ answer: Answer) -> Bool {
    guard let timestamp = answer.header("Wechatpay-Timestamp"), let nonce = answer.header("Wechatpay-Nonce"),
        let signature = answer.header("Wechatpay-Signature").flatMap({ Data(base64Encoded: $0) }),
        answer.header("Wechatpay-Serial") == Keys.platformSerial
    else { return false }
    let message = WeChatPaySignature.responseMessage(timestamp: timestamp, nonce: nonce, body: answer.body)
    return Keys.platform.publicKey.isValidPKCS1SHA256Signature(Array(signature), for: message)
}

/// The `<method>_response` object of an Alipay answer, and whether its `sign` verifies with
/// Alipay's public key over the object's exact text.
func alipayResponse(_ answer: Answer, method: String) -> (object: [String: Any], verified: Bool) {
    let key = AlipaySignature.responseKey(method: method)
    let object = answer.json[key] as? [String: Any] ?? [:]
    guard let content = AlipaySignature.responseContent(answer.body, key: key),
        let sign = (answer.json["sign"] as? String).flatMap({ Data(base64Encoded: $0) })
    else { return (object, false) }
    return (object, Keys.alipay.publicKey.isValidPKCS1SHA256Signature(Array(sign), for: Array(content)))
}

struct Unexpected: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
