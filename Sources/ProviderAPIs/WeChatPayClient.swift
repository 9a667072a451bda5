public import Foundation
import NIOHTTP1
import PaymentProviders
public import Payments
import _CryptoExtras

/// WeChat Pay API v3, for reconciliation: query an order by out_trade_no, close it.
///
/// Requests are signed WECHATPAY2-SHA256-RSA2048 with the merchant API key, each attempt afresh
/// (timestamp, 32-character nonce). Every `2xx` answer is verified with the platform key
/// (``WeChatPayResponseVerifier``) before a word of it is read; one that fails is
/// ``ProviderCallError/unverified(_:)``.
///
/// Error answers are not signed by WeChat Pay, so the few that mean something are believed on
/// TLS alone, and only where acting on a forgery could not mark an order paid:
/// - query `404 ORDER_NOT_EXIST` → no payment (`event: nil`); the reconciler only ever closes on
///   it, never marks paid;
/// - close `400 ORDER_CLOSED` → ``CloseResult/closed``, `404 ORDER_NOT_EXIST` →
///   ``CloseResult/notFound``, a refusal about the order's state (`ORDERPAID`, `ORDER_PAID`,
///   `TRADE_ERROR`, `RULE_LIMIT`, `USERPAYING`) → ``CloseResult/refused(code:)``, which sends the
///   reconciler back to query.
/// Every other `4xx` is ``ProviderCallError/rejected(status:code:message:)``: credentials
/// (`401 SIGN_ERROR`, `403 NO_AUTH`) or parameters (`400 PARAM_ERROR`, `INVALID_REQUEST`) that
/// an operator must fix.
public struct WeChatPayClient: ProviderClient {
    public let provider = Provider.wechatpay
    private let configuration: Configuration
    private let http: ProviderHTTP
    private let limiter: RateLimiter
    private let verifier: WeChatPayResponseVerifier

    /// Refusals of a close that are about the order's state: query again to learn it. Of these,
    /// only `RULE_LIMIT` (403) is on the close page read; `ORDERPAID`, `ORDER_PAID`, `TRADE_ERROR`
    /// and `USERPAYING` are the names WeChat Pay's other APIs use for a paid or paying order,
    /// listed so that none of them is taken for a bad credential.
    private static let stateRefusals: Set<String> = [
        "ORDERPAID", "ORDER_PAID", "TRADE_ERROR", "RULE_LIMIT", "USERPAYING",
    ]

    public init(configuration: Configuration, http: ProviderHTTP) {
        self.configuration = configuration
        self.http = http
        self.limiter = RateLimiter(configuration.rateLimit)
        self.verifier = WeChatPayResponseVerifier(
            platformKeys: configuration.platformKeys,
            tolerance: configuration.timestampTolerance
        )
    }

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`.
    public func query(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> TradeQueryResult {
        try Self.check(trade)
        return try await self.http.call(
            .wechatpay,
            "query",
            limiter: self.limiter,
            timeout: self.configuration.timeout,
            now: now
        ) { now throws(ProviderCallError) in
            try self.queryRequest(trade, timestamp: Self.unixSeconds(now), nonce: Self.nonce())
        } interpret: { response, now throws(ProviderCallError) in
            .answer(try self.readQuery(response, trade: trade, now: now))
        }
    }

    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` with `{"mchid":"…"}`.
    public func close(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> CloseResult {
        try Self.check(trade)
        return try await self.http.call(
            .wechatpay,
            "close",
            limiter: self.limiter,
            timeout: self.configuration.timeout,
            now: now
        ) { now throws(ProviderCallError) in
            try self.closeRequest(trade, timestamp: Self.unixSeconds(now), nonce: Self.nonce())
        } interpret: { response, now throws(ProviderCallError) in
            .answer(try self.readClose(response, now: now))
        }
    }

    // MARK: Requests

    /// The signed query request, with the given timestamp and nonce.
    package func queryRequest(_ trade: TradeReference, timestamp: Int64, nonce: String) throws(ProviderCallError)
        -> ProviderRequest
    {
        let target =
            self.configuration.baseURL.path + "/v3/pay/transactions/out-trade-no/"
            + PercentEncoding.segment(trade.orderID) + "?mchid=" + PercentEncoding.encode(self.configuration.merchantID)
        return try self.signedRequest(.GET, target: target, body: [], timestamp: timestamp, nonce: nonce)
    }

    /// The signed close request, with the given timestamp and nonce.
    package func closeRequest(_ trade: TradeReference, timestamp: Int64, nonce: String) throws(ProviderCallError)
        -> ProviderRequest
    {
        let target =
            self.configuration.baseURL.path + "/v3/pay/transactions/out-trade-no/"
            + PercentEncoding.segment(trade.orderID) + "/close"
        // The merchant id is digits (checked by the configuration): nothing in it needs escaping.
        let body = Array("{\"mchid\":\"\(self.configuration.merchantID)\"}".utf8)
        return try self.signedRequest(.POST, target: target, body: body, timestamp: timestamp, nonce: nonce)
    }

    /// Signs `METHOD\nTARGET\nTIMESTAMP\nNONCE\nBODY\n` exactly as sent.
    private func signedRequest(_ method: HTTPMethod, target: String, body: [UInt8], timestamp: Int64, nonce: String)
        throws(ProviderCallError) -> ProviderRequest
    {
        let message = WeChatPaySignature.requestMessage(
            method: method.rawValue,
            target: target,
            timestamp: timestamp,
            nonce: nonce,
            body: body
        )
        let signature: String
        do {
            signature = try self.configuration.merchantPrivateKey.pkcs1SHA256Signature(for: message)
        } catch {
            throw .rejected(status: 0, code: "LOCAL_SIGNING_FAILED", message: "the merchant key could not sign")
        }
        let authorization = WeChatPaySignature.Authorization(
            merchantID: self.configuration.merchantID,
            nonce: nonce,
            timestamp: timestamp,
            serial: self.configuration.merchantSerial,
            signature: signature
        )
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: authorization.header)
        headers.add(name: "Accept", value: "application/json")
        if method == .POST { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "User-Agent", value: "PayNotify/1.0")
        headers.add(name: "Wechatpay-Serial", value: self.configuration.platformSerial)
        return ProviderRequest(
            method: method,
            url: self.configuration.baseURL.url(target),
            headers: headers,
            body: body
        )
    }

    // MARK: Answers

    private func readQuery(_ response: ProviderResponse, trade: TradeReference, now: Date) throws(ProviderCallError)
        -> TradeQueryResult
    {
        guard (200..<300).contains(response.status) else {
            let error = Self.errorBody(response)
            // Not signed (WeChat Pay signs only 2xx answers), so believed on TLS alone: the
            // reconciler only ever closes on it, never marks paid.
            if response.status == 404, error.code == "ORDER_NOT_EXIST" {
                return TradeQueryResult(event: nil, providerState: "ORDER_NOT_EXIST", rawBody: response.body)
            }
            throw Self.rejection(response, error)
        }
        try self.verifier.verify(response, now: now)
        guard response.status == 200,
            let transaction = try? JSONDecoder().decode(WeChatPayTransaction.self, from: Data(response.body))
        else {
            throw .rejected(
                status: response.status,
                code: "UNREADABLE_ANSWER",
                message: "a verified query answer is not a transaction"
            )
        }
        if let outTradeNo = transaction.outTradeNo, outTradeNo != trade.orderID {
            throw .rejected(
                status: response.status,
                code: "OTHER_ORDER",
                message: "the answer is about out_trade_no \(outTradeNo.prefix(64)), not \(trade.orderID.prefix(64))"
            )
        }
        // An unknown state is not "no payment": it must not read as `event: nil`.
        guard let event = transaction.event else {
            throw .rejected(
                status: response.status,
                code: "UNKNOWN_TRADE_STATE",
                message: "trade_state \(transaction.tradeState.prefix(40)) is not one this service knows"
            )
        }
        return TradeQueryResult(event: event, providerState: transaction.tradeState, rawBody: response.body)
    }

    private func readClose(_ response: ProviderResponse, now: Date) throws(ProviderCallError) -> CloseResult {
        guard (200..<300).contains(response.status) else {
            // Not signed: believed on TLS alone. None of these can mark an order paid.
            let error = Self.errorBody(response)
            switch error.code {
            case "ORDER_CLOSED": return .closed
            case "ORDER_NOT_EXIST": return .notFound
            case let code? where Self.stateRefusals.contains(code): return .refused(code: code)
            default: throw Self.rejection(response, error)
            }
        }
        // The documented answer is `204`, empty and signed; any verified 2xx means closed.
        try self.verifier.verify(response, now: now)
        return .closed
    }

    private struct ErrorBody: Decodable {
        var code: String?
        var message: String?
    }

    private static func errorBody(_ response: ProviderResponse) -> ErrorBody {
        (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body))) ?? ErrorBody()
    }

    private static func rejection(_ response: ProviderResponse, _ error: ErrorBody) -> ProviderCallError {
        .rejected(
            status: response.status,
            code: error.code.map { String($0.prefix(64)) } ?? "HTTP_\(response.status)",
            message: error.message.map { String($0.prefix(200)) } ?? "no message"
        )
    }

    // MARK: Helpers

    private static func check(_ trade: TradeReference) throws(ProviderCallError) {
        guard !trade.orderID.isEmpty else { throw .noReference("the order has no id to query WeChat Pay with") }
    }

    private static func unixSeconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    private static let nonceAlphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    /// 32 characters from `[0-9A-Za-z]`, as WeChat Pay's SDK makes them, from the system's CSPRNG.
    package static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(
            (0..<32).map { _ in Self.nonceAlphabet[Int.random(in: 0..<Self.nonceAlphabet.count, using: &generator)] }
        )
    }
}
