import Foundation
import Hummingbird
import PaymentProviders
import Payments
import Synchronization

/// Alipay's open platform gateway, `POST /gateway.do` (provider-apis.md §2a–2c), for
/// `alipay.trade.query` and `alipay.trade.close`.
///
/// The common parameters come in the query string and `biz_content` in the form body. `sign` must
/// verify with the app's public key over every other parameter, `sign_type` included and empty ones
/// left out (`AlipaySignature.content`); else the gateway answers an unsigned `error_response` with
/// `40002 isv.invalid-signature`. Every answer with a `<method>_response` object, business failures
/// included, is signed with Alipay's key over the object's text exactly as written in the body: the
/// object is written once and the same bytes are signed and embedded.
///
/// A trade exists at Alipay only once its QR code was scanned (§2c): until then query and close
/// answer `40004 ACQ.TRADE_NOT_EXIST`.
struct AlipayGateway: Sendable {
    let emulator: Emulator

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/gateway.do") { request, _ in await self.gateway(request) }
    }

    private func gateway(_ request: Request) async -> Response {
        var request = request
        let body = (try? await request.collectBody(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        // Query first, then the form: a name in both is taken from the form.
        let fields = (formParameters(request.uri.query ?? "") ?? []) + (formParameters(body) ?? [])
        let parameters = Dictionary(fields, uniquingKeysWith: { $1 })
        let method = parameters["method"] ?? ""
        let business = parameters["biz_content"].flatMap { JSON.decode(BizContent.self, from: Array($0.utf8)) }
        let operation =
            switch method {
            case "alipay.trade.query": "query"
            case "alipay.trade.close": "close"
            default: method
            }
        let orderID =
            business?.outTradeNo
            ?? business?.tradeNo.flatMap { tradeNo in
                self.emulator.state.withLock { $0.trades.trade(paymentID: tradeNo)?.orderID }
            }
        let call = APICall(provider: .alipay, operation: operation, orderID: orderID)
        return await self.emulator.perform(call, faultAnswer: Self.faultAnswer) { signing in
            if let refusal = self.authenticate(parameters) { return refusal }
            guard operation == "query" || operation == "close" else {
                return Self.gatewayError("40002", "Invalid Arguments", "isv.invalid-method", "不存在的方法名")
            }
            let key = AlipaySignature.responseKey(method: method)
            guard let business, business.outTradeNo != nil || business.tradeNo != nil else {
                return self.signed(
                    key,
                    .failure("40002", "Invalid Arguments", "isv.missing-parameter", "缺少必选参数 out_trade_no 或 trade_no"),
                    signing: signing
                )
            }
            let object = operation == "query" ? self.query(business) : self.close(business)
            return self.signed(key, object, signing: signing)
        }
    }

    /// The unsigned `error_response` refusing the request, or nil when it is this app's and its
    /// `sign` verifies.
    private func authenticate(_ parameters: [String: String]) -> Response? {
        let configuration = self.emulator.configuration.alipay
        guard parameters["app_id"] == configuration.appID else {
            return Self.gatewayError("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数")
        }
        guard let sign = parameters["sign"], !sign.isEmpty else {
            return Self.gatewayError("40001", "Missing Required Arguments", "isv.missing-signature", "缺少签名参数")
        }
        guard parameters["sign_type"] == "RSA2" else {
            return Self.gatewayError("40002", "Invalid Arguments", "isv.invalid-signature-type", "无效的签名类型")
        }
        let content = AlipaySignature.content(parameters.filter { $0.key != "sign" })
        guard let signature = Data(base64Encoded: sign),
            configuration.appPublicKey.isValidPKCS1SHA256Signature(Array(signature), for: content)
        else {
            // Alipay's own words, with the text it verified, as its gateway writes them.
            return Self.gatewayError(
                "40002",
                "Invalid Arguments",
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：\(String(decoding: content, as: UTF8.self))"
            )
        }
        return nil
    }

    /// The trade `business` names, if it exists at Alipay (its QR code was scanned).
    private func trade(_ business: BizContent) -> Trade? {
        let trade = self.emulator.state.withLock { state -> Trade? in
            // `trade_no` wins when both are sent.
            if let tradeNo = business.tradeNo { return state.trades.trade(paymentID: tradeNo) }
            return business.outTradeNo.flatMap { state.trades[.alipay, $0] }
        }
        guard let trade, trade.provider == .alipay, trade.existsAtProvider else { return nil }
        return trade
    }

    private func query(_ business: BizContent) -> ResponseObject {
        guard let trade = self.trade(business) else { return .tradeNotExist }
        var object = ResponseObject.success
        object.outTradeNo = trade.orderID
        object.tradeNo = trade.paymentID
        object.tradeStatus = trade.alipayStatus
        object.totalAmount = Self.yuan(trade.reportedAmount.amount)
        object.buyerPayAmount = Self.yuan(trade.paid?.amount ?? 0)
        object.receiptAmount = Self.yuan(trade.paid?.amount ?? 0)
        object.sendPayDate = trade.paidAt.map(AlipaySignature.beijingTimestamp)
        object.buyerUserID = trade.paid == nil ? nil : "2088102177846880"
        return object
    }

    private func close(_ business: BizContent) -> ResponseObject {
        guard let found = self.trade(business) else { return .tradeNotExist }
        let now = self.emulator.now()
        let outcome = self.emulator.state.withLock { state in
            state.trades.update(provider: .alipay, orderID: found.orderID) { trade in
                trade.closeRequested(now: now, minimumAge: nil)
            }
        }
        switch outcome {
        case .closed?:
            var object = ResponseObject.success
            object.outTradeNo = found.orderID
            object.tradeNo = found.paymentID
            return object
        case .paid?, .alreadyClosed?:
            // Only a trade waiting for the buyer can be closed; a closed one too answers this (a
            // guess from the error's description, "交易状态不合法").
            return .failure("40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        case .notFound?, .tooEarly?, nil:
            return .tradeNotExist
        }
    }

    /// `{"<key>":<object>,"sign":"…"}`, the object's bytes written once, signed and embedded as they are.
    private func signed(_ key: String, _ object: ResponseObject, signing: ResponseSigning) -> Response {
        let text = JSON.encode(object)
        var body = Array("{\"\(key)\":".utf8) + text
        if signing != .none {
            // A wrong signature is a real one over other bytes: shaped right, verifying nothing.
            let signed = signing == .valid ? text : text + Array(" ".utf8)
            let signature = (try? self.emulator.configuration.alipay.alipayPrivateKey.pkcs1SHA256Signature(for: signed))
            body += Array(",\"sign\":\"\(signature ?? "")\"".utf8)
        }
        body += Array("}".utf8)
        return .bytes(.ok, body, contentType: "application/json;charset=utf-8")
    }

    /// A gateway refusal: `error_response`, unsigned, HTTP 200 as Alipay answers.
    private static func gatewayError(
        _ code: String,
        _ message: String,
        _ subCode: String,
        _ subMessage: String,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let object = ResponseObject.failure(code, message, subCode, subMessage)
        return .bytes(
            status,
            Array("{\"error_response\":".utf8) + JSON.encode(object) + Array("}".utf8),
            contentType: "application/json;charset=utf-8"
        )
    }

    /// A `500` carrying Alipay's "service unavailable" (`20000 isp.unknow-error`), or a `429` with
    /// `Retry-After`. Alipay documents no rate-limit answer (§2e): the 429 and its sub_code
    /// `aop.rate-limit-exceeded` are guesses, shaped like its other gateway errors.
    private static func faultAnswer(_ fault: Fault, retryAfterSeconds: Int) -> Response {
        guard fault == .rateLimit else {
            return Self.gatewayError(
                "20000",
                "Service Currently Unavailable",
                "isp.unknow-error",
                "服务暂不可用",
                status: .internalServerError
            )
        }
        var response = Self.gatewayError(
            "20000",
            "Service Currently Unavailable",
            "aop.rate-limit-exceeded",
            "调用频率超限",
            status: .tooManyRequests
        )
        response.headers[.retryAfter] = String(retryAfterSeconds)
        return response
    }

    /// Fen as Alipay's yuan text, two decimals.
    private static func yuan(_ fen: Int64) -> String {
        "\(fen / 100).\(String(format: "%02lld", fen % 100))"
    }

    private struct BizContent: Decodable {
        let outTradeNo: String?
        let tradeNo: String?

        enum CodingKeys: String, CodingKey {
            case outTradeNo = "out_trade_no"
            case tradeNo = "trade_no"
        }
    }

    /// The `<method>_response` object (and `error_response`): the fields the two methods answer.
    private struct ResponseObject: Encodable {
        let code: String
        let msg: String
        var subCode: String?
        var subMsg: String?
        var outTradeNo: String?
        var tradeNo: String?
        var tradeStatus: String?
        var totalAmount: String?
        var buyerPayAmount: String?
        var receiptAmount: String?
        var sendPayDate: String?
        var buyerUserID: String?

        static let success = Self(code: "10000", msg: "Success")
        static let tradeNotExist = Self.failure("40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")

        static func failure(_ code: String, _ msg: String, _ subCode: String, _ subMsg: String) -> Self {
            var object = Self(code: code, msg: msg)
            object.subCode = subCode
            object.subMsg = subMsg
            return object
        }

        private init(code: String, msg: String) {
            self.code = code
            self.msg = msg
        }

        enum CodingKeys: String, CodingKey {
            case code, msg
            case subCode = "sub_code"
            case subMsg = "sub_msg"
            case outTradeNo = "out_trade_no"
            case tradeNo = "trade_no"
            case tradeStatus = "trade_status"
            case totalAmount = "total_amount"
            case buyerPayAmount = "buyer_pay_amount"
            case receiptAmount = "receipt_amount"
            case sendPayDate = "send_pay_date"
            case buyerUserID = "buyer_user_id"
        }
    }
}
