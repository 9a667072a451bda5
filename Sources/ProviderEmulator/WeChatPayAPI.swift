import Foundation
import HTTPTypes
import Hummingbird
import PaymentProviders
import Payments
import Synchronization

/// WeChat Pay API v3's query and close by out_trade_no (provider-apis.md §1a, 1b, 1d, 1e), as
/// `api.mch.weixin.qq.com` serves them.
///
/// Every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048 …` signed with the merchant
/// API key over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` (the request target exactly as
/// received), for this `mchid`, within 5 minutes either way; else `401 SIGN_ERROR`. Every 2xx
/// answer, the close's empty `204` included, is signed as the platform: `Wechatpay-Timestamp`,
/// `-Nonce`, `-Signature`, `-Serial` over `TIMESTAMP\nNONCE\nBODY\n`. Errors are
/// `{"code","message"}` and unsigned (clients verify only 2xx answers); each answer has a
/// `Request-ID`.
struct WeChatPayAPI: Sendable {
    let emulator: Emulator

    /// How far the signed timestamp may be from now, either way (WeChat Pay's SDKs use 5 minutes).
    private static let tolerance: TimeInterval = 300

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v3/pay/transactions/out-trade-no/{out_trade_no}") { request, context in
            await self.query(request, orderID: try Self.orderID(context))
        }
        router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close") { request, context in
            await self.close(request, orderID: try Self.orderID(context))
        }
    }

    private static func orderID(_ context: BasicRequestContext) throws -> String {
        let raw = try context.parameters.require("out_trade_no")
        return raw.removingPercentEncoding ?? raw
    }

    private func query(_ request: Request, orderID: String) async -> Response {
        let call = APICall(provider: .wechatpay, operation: "query", orderID: orderID)
        let body = await Self.body(of: request)
        return await self.emulator.perform(call, faultAnswer: Self.faultAnswer) { signing in
            if let refusal = self.authenticate(request, body: body) { return refusal }
            guard request.uri.queryParameters["mchid"].map(String.init) == self.merchantID else {
                return Self.error(.badRequest, "PARAM_ERROR", "mchid 与签名的商户号不一致")
            }
            guard let trade = self.emulator.state.withLock({ $0.trades[.wechatpay, orderID] }) else {
                return Self.error(.notFound, "ORDER_NOT_EXIST", "订单不存在")
            }
            return self.signed(.ok, JSON.encode(self.transaction(trade)), signing: signing)
        }
    }

    private func close(_ request: Request, orderID: String) async -> Response {
        let call = APICall(provider: .wechatpay, operation: "close", orderID: orderID)
        let body = await Self.body(of: request)
        return await self.emulator.perform(call, faultAnswer: Self.faultAnswer) { signing in
            if let refusal = self.authenticate(request, body: body) { return refusal }
            guard JSON.decode(CloseRequest.self, from: body)?.mchid == self.merchantID else {
                return Self.error(.badRequest, "PARAM_ERROR", "body 中的 mchid 缺失或与签名的商户号不一致")
            }
            let now = self.emulator.now()
            let minimumAge = self.emulator.configuration.closeMinimumAge
            let outcome = self.emulator.state.withLock { state in
                state.trades.update(provider: .wechatpay, orderID: orderID) { trade in
                    trade.closeRequested(now: now, minimumAge: minimumAge)
                }
            }
            switch outcome {
            case nil: return Self.error(.notFound, "ORDER_NOT_EXIST", "订单不存在")
            case .closed: return self.signed(.noContent, [], signing: signing)
            case .alreadyClosed: return Self.error(.badRequest, "ORDER_CLOSED", "订单已关闭")
            // A guess: v3's close page lists no code for a paid order; `ORDERPAID` is v2's.
            case .paid: return Self.error(.badRequest, "ORDERPAID", "订单已支付")
            case .tooEarly: return Self.error(.forbidden, "RULE_LIMIT", "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟")
            case .notFound: return Self.error(.notFound, "ORDER_NOT_EXIST", "订单不存在")
            }
        }
    }

    private var merchantID: String { self.emulator.configuration.wechatPay.merchantID }

    private struct CloseRequest: Decodable {
        let mchid: String?
    }

    /// The answer refusing the request, or nil when it is signed by this merchant's API key.
    private func authenticate(_ request: Request, body: [UInt8]) -> Response? {
        guard let header = request.headers[.authorization],
            let authorization = WeChatPaySignature.Authorization(header: header)
        else {
            return Self.error(.unauthorized, "SIGN_ERROR", "Authorization 缺失或不是 \(WeChatPaySignature.scheme)")
        }
        guard authorization.merchantID == self.merchantID else {
            return Self.error(.unauthorized, "SIGN_ERROR", "商户号 \(authorization.merchantID) 与签名密钥不匹配")
        }
        let age = self.emulator.now().timeIntervalSince1970 - TimeInterval(authorization.timestamp)
        guard abs(age) < Self.tolerance else {
            return Self.error(.unauthorized, "SIGN_ERROR", "签名的时间戳已过期")
        }
        let message = WeChatPaySignature.requestMessage(
            method: request.method.rawValue,
            target: request.uri.string,
            timestamp: authorization.timestamp,
            nonce: authorization.nonce,
            body: body
        )
        guard let signature = Data(base64Encoded: authorization.signature),
            self.emulator.configuration.wechatPay.merchantPublicKey
                .isValidPKCS1SHA256Signature(Array(signature), for: message)
        else {
            return Self.error(.unauthorized, "SIGN_ERROR", "错误的签名，验签失败")
        }
        return nil
    }

    /// A 2xx answer, signed with the platform key as `signing` says.
    private func signed(_ status: HTTPResponse.Status, _ body: [UInt8], signing: ResponseSigning) -> Response {
        let configuration = self.emulator.configuration.wechatPay
        var headers: HTTPFields = [:]
        headers[Self.requestID] = Identifiers.requestID()
        if signing != .none {
            let timestamp = String(Int64(self.emulator.now().timeIntervalSince1970))
            let nonce = Identifiers.alphanumerics(32)
            // A wrong signature is a real one over other bytes: shaped right, verifying nothing.
            let signed = signing == .valid ? body : body + Array("tampered".utf8)
            let message = WeChatPaySignature.responseMessage(timestamp: timestamp, nonce: nonce, body: signed)
            headers[Self.timestamp] = timestamp
            headers[Self.nonce] = nonce
            headers[Self.serial] = configuration.platformSerial
            headers[Self.signature] = (try? configuration.platformPrivateKey.pkcs1SHA256Signature(for: message)) ?? ""
        }
        return .bytes(status, body, headers: headers)
    }

    /// WeChat Pay's error answer, `{"code","message"}`, with a `Request-ID`.
    private static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        .bytes(
            status,
            JSON.encode(["code": code, "message": message]),
            headers: [Self.requestID: Identifiers.requestID()]
        )
    }

    private static func faultAnswer(_ fault: Fault, retryAfterSeconds: Int) -> Response {
        guard fault == .rateLimit else { return Self.error(.internalServerError, "SYSTEM_ERROR", "系统错误") }
        var response = Self.error(.tooManyRequests, "RATELIMIT_EXCEEDED", "请求未受理，请降低频率后重试")
        response.headers[.retryAfter] = String(retryAfterSeconds)
        return response
    }

    private static func body(of request: Request) async -> [UInt8] {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: 64 * 1024) else { return [] }
        return Array(buffer.readableBytesView)
    }

    /// The transaction as a query answers it (§1a): `transaction_id`, `success_time` and the
    /// payer's amounts once paid.
    private func transaction(_ trade: Trade) -> Transaction {
        let amount = trade.reportedAmount
        let paid = trade.paid != nil
        let (state, description) = trade.wechatPayState
        return Transaction(
            amount: .init(
                total: amount.amount,
                payerTotal: paid ? amount.amount : nil,
                currency: amount.currency,
                payerCurrency: paid ? amount.currency : nil
            ),
            appid: self.emulator.configuration.wechatPay.appID,
            mchid: self.merchantID,
            outTradeNo: trade.orderID,
            transactionID: trade.visiblePaymentID,
            tradeType: "NATIVE",
            tradeState: state,
            tradeStateDesc: description,
            successTime: trade.paidAt.map(Self.rfc3339),
            bankType: paid ? "OTHERS" : nil,
            payer: paid ? ["openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"] : nil
        )
    }

    /// RFC 3339 in Beijing time, as WeChat Pay writes it (`2018-06-08T10:34:56+08:00`).
    private static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3_600)
        return formatter.string(from: date)
    }

    private struct Transaction: Encodable {
        struct Amount: Encodable {
            let total: Int64
            let payerTotal: Int64?
            let currency: String
            let payerCurrency: String?

            enum CodingKeys: String, CodingKey {
                case total, currency
                case payerTotal = "payer_total"
                case payerCurrency = "payer_currency"
            }
        }

        let amount: Amount
        let appid: String
        let mchid: String
        let outTradeNo: String
        let transactionID: String?
        let tradeType: String
        let tradeState: String
        let tradeStateDesc: String
        let successTime: String?
        let bankType: String?
        let payer: [String: String]?

        enum CodingKeys: String, CodingKey {
            case amount, appid, mchid, payer
            case outTradeNo = "out_trade_no"
            case transactionID = "transaction_id"
            case tradeType = "trade_type"
            case tradeState = "trade_state"
            case tradeStateDesc = "trade_state_desc"
            case successTime = "success_time"
            case bankType = "bank_type"
        }
    }

    private static let requestID = HTTPField.Name("Request-ID")!
    private static let timestamp = HTTPField.Name("Wechatpay-Timestamp")!
    private static let nonce = HTTPField.Name("Wechatpay-Nonce")!
    private static let serial = HTTPField.Name("Wechatpay-Serial")!
    private static let signature = HTTPField.Name("Wechatpay-Signature")!
}
