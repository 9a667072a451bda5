public import Foundation
import NIOHTTP1
import PaymentProviders
public import Payments
import _CryptoExtras

/// Alipay's open platform gateway, for reconciliation: `alipay.trade.query` and
/// `alipay.trade.close` by out_trade_no (our order id).
///
/// Each request is a POST to the gateway: the common parameters (`app_id`, `method`,
/// `charset=utf-8`, `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`, `sign`) in the
/// query string, `biz_content={"out_trade_no":"…"}` as the form body. `sign` is the app key's
/// RSA2 signature of every other parameter, `biz_content` included (``AlipaySignature/content(_:keepingEmpty:)``).
/// `format=JSON` is optional and JSON its only value, so it is not sent: the signed text then
/// matches the one Alipay's SDK signs for the same call.
///
/// Alipay answers `200` with its verdict inside; every verdict is verified
/// (``AlipayResponseVerifier``) before it is believed, failures included:
/// - a `sign` that does not verify → ``ProviderCallError/unverified(_:)``;
/// - no `sign` → ``ProviderCallError/unverified(_:)`` too, whatever the answer says. Alipay's Java
///   SDK accepts an unsigned failure; here even `40004 ACQ.TRADE_NOT_EXIST` must be signed (the
///   real gateway signs business failures), because on it the reconciler treats the order as
///   never paid;
/// - the one exception: `20000` (service unavailable) or `ACQ.SYSTEM_ERROR`, signed or not, is
///   retried and ends as ``ProviderCallError/unavailable(_:retryAfter:)``: believing it changes
///   nothing about the order.
///
/// Alipay documents no rate-limit answer that was found (no code, no HTTP status); throttling
/// seen as `20000` is retried with back-off like any outage, and an HTTP `429` is honoured by
/// ``ProviderHTTP``.
public struct AlipayClient: ProviderClient {
    public let provider = Provider.alipay
    private let configuration: Configuration
    private let http: ProviderHTTP
    private let limiter: RateLimiter
    private let verifier: AlipayResponseVerifier

    private static let queryMethod = "alipay.trade.query"
    private static let closeMethod = "alipay.trade.close"

    public init(configuration: Configuration, http: ProviderHTTP) {
        self.configuration = configuration
        self.http = http
        self.limiter = RateLimiter(configuration.rateLimit)
        self.verifier = AlipayResponseVerifier(publicKeys: configuration.alipayPublicKeys)
    }

    /// `alipay.trade.query`: `WAIT_BUYER_PAY` → awaiting payment; `TRADE_SUCCESS` and
    /// `TRADE_FINISHED` → succeeded, paid `total_amount` in CNY fen; `TRADE_CLOSED` → canceled;
    /// `40004 ACQ.TRADE_NOT_EXIST` → no payment (`event: nil`): the QR code was never scanned, so
    /// the trade does not exist yet.
    public func query(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> TradeQueryResult {
        let answer = try await self.call(Self.queryMethod, trade, now: now)
        switch (answer.fields.code, answer.fields.subCode) {
        case ("10000", _):
            try Self.checkOrder(answer, trade)
            let status = answer.fields.tradeStatus ?? ""
            let event: PaymentEvent
            switch status {
            case "WAIT_BUYER_PAY":
                event = PaymentEvent(kind: .awaitingPayment)
            case "TRADE_SUCCESS", "TRADE_FINISHED":
                // Without a readable amount the order state machine raises a mismatch instead of
                // marking the order paid.
                let paid = answer.fields.totalAmount.flatMap(AlipayAdapter.fen(fromYuan:)).map {
                    Money(amount: $0, currency: "CNY")
                }
                event = PaymentEvent(kind: .succeeded, paid: paid)
            case "TRADE_CLOSED":
                // Also what a fully refunded trade says; the query cannot tell the two apart, and
                // a cancel after success changes nothing in the order state machine.
                event = PaymentEvent(kind: .canceled)
            default:
                // An unknown status is not "no payment": it must not read as `event: nil`.
                throw .rejected(
                    status: 200,
                    code: "UNKNOWN_TRADE_STATUS",
                    message: "trade_status \(status.prefix(40)) is not one this service knows"
                )
            }
            return TradeQueryResult(event: event, providerState: status, rawBody: answer.body)
        case ("40004", "ACQ.TRADE_NOT_EXIST"):
            return TradeQueryResult(event: nil, providerState: "ACQ.TRADE_NOT_EXIST", rawBody: answer.body)
        default:
            throw Self.rejection(answer)
        }
    }

    /// `alipay.trade.close`: `10000` → closed; `ACQ.TRADE_NOT_EXIST` → not found (a QR code
    /// nobody scanned); `ACQ.TRADE_STATUS_ERROR` (paid, finished or closed already) → refused,
    /// so the reconciler queries to learn which.
    public func close(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> CloseResult {
        let answer = try await self.call(Self.closeMethod, trade, now: now)
        switch (answer.fields.code, answer.fields.subCode) {
        case ("10000", _):
            try Self.checkOrder(answer, trade)
            return .closed
        case ("40004", "ACQ.TRADE_NOT_EXIST"):
            return .notFound
        case ("40004", "ACQ.TRADE_STATUS_ERROR"):
            return .refused(code: "ACQ.TRADE_STATUS_ERROR")
        default:
            throw Self.rejection(answer)
        }
    }

    // MARK: Requests

    /// The parameters of a call about `orderID`, `sign` excepted.
    package func parameters(method: String, orderID: String, timestamp: String) -> [String: String] {
        [
            "app_id": self.configuration.appID,
            "method": method,
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": timestamp,
            "version": "1.0",
            "biz_content": Self.bizContent(orderID: orderID),
        ]
    }

    /// `sign` for `parameters`: the app key's RSA2 signature of every one of them, sorted.
    package func sign(_ parameters: [String: String]) throws(ProviderCallError) -> String {
        do {
            return try self.configuration.appPrivateKey.pkcs1SHA256Signature(
                for: AlipaySignature.content(parameters.filter { $0.key != "sign" })
            )
        } catch {
            throw .rejected(status: 0, code: "LOCAL_SIGNING_FAILED", message: "the app key could not sign")
        }
    }

    /// The signed request of a call about `orderID`, stamped `now`.
    package func request(method: String, orderID: String, now: Date) throws(ProviderCallError) -> ProviderRequest {
        var parameters = self.parameters(
            method: method,
            orderID: orderID,
            timestamp: AlipaySignature.beijingTimestamp(now)
        )
        parameters["sign"] = try self.sign(parameters)
        let body = PercentEncoding.form([("biz_content", parameters["biz_content"] ?? "")])
        parameters["biz_content"] = nil
        let query = PercentEncoding.form(parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded;charset=utf-8")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: "PayNotify/1.0")
        return ProviderRequest(
            method: .POST,
            url: self.configuration.gatewayURL.url(self.configuration.gatewayURL.path + "?" + query),
            headers: headers,
            body: Array(body.utf8)
        )
    }

    /// `{"out_trade_no":"…"}`, the id escaped as JSON.
    private static func bizContent(orderID: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(["out_trade_no": orderID])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Answers

    /// A verified answer: its fields, and the body as received.
    private struct Answer: Sendable {
        let fields: Fields
        let body: [UInt8]
    }

    /// The fields read from an answer object; all text, as Alipay writes them.
    private struct Fields: Decodable, Sendable {
        let code: String?
        let msg: String?
        let subCode: String?
        let subMsg: String?
        let tradeStatus: String?
        let totalAmount: String?
        let outTradeNo: String?

        enum CodingKeys: String, CodingKey {
            case code, msg
            case subCode = "sub_code"
            case subMsg = "sub_msg"
            case tradeStatus = "trade_status"
            case totalAmount = "total_amount"
            case outTradeNo = "out_trade_no"
        }

        init(from decoder: any Decoder) throws {
            // Text fields; a number where text is expected is read as absent, not as a failure.
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func text(_ key: CodingKeys) -> String? { try? container.decodeIfPresent(String.self, forKey: key) }
            self.code = text(.code)
            self.msg = text(.msg)
            self.subCode = text(.subCode)
            self.subMsg = text(.subMsg)
            self.tradeStatus = text(.tradeStatus)
            self.totalAmount = text(.totalAmount)
            self.outTradeNo = text(.outTradeNo)
        }
    }

    private func call(_ method: String, _ trade: TradeReference, now: Date) async throws(ProviderCallError) -> Answer {
        guard !trade.orderID.isEmpty else { throw .noReference("the order has no id to ask Alipay about") }
        return try await self.http.call(
            .alipay,
            method,
            limiter: self.limiter,
            timeout: self.configuration.timeout,
            now: now
        ) { now throws(ProviderCallError) in
            try self.request(method: method, orderID: trade.orderID, now: now)
        } interpret: { response, _ throws(ProviderCallError) in
            try self.read(response, method: method)
        }
    }

    private func read(_ response: ProviderResponse, method: String) throws(ProviderCallError) -> ProviderVerdict<
        Answer
    > {
        guard response.status == 200 else {
            throw .rejected(
                status: response.status,
                code: "HTTP_\(response.status)",
                message: "the gateway did not answer 200"
            )
        }
        guard let envelope = AlipayResponseVerifier.envelope(response.body, method: method) else {
            throw .unverified("the answer holds no \(AlipaySignature.responseKey(method: method))")
        }
        let verified = envelope.sign.map { self.verifier.isValid(envelope.content, sign: $0) }
        if verified == false { throw .unverified("sign does not verify with any Alipay public key") }
        let fields = try? JSONDecoder().decode(Fields.self, from: Data(envelope.content))
        // Believing "unavailable" changes nothing, so it is retried signed or not.
        if fields?.code == "20000" || fields?.subCode == "ACQ.SYSTEM_ERROR" {
            return .retry("Alipay \(fields?.code ?? "") \(fields?.subCode ?? "")")
        }
        guard verified == true else {
            throw .unverified("the answer (code \(fields?.code?.prefix(8) ?? "none")) has no sign")
        }
        guard let fields, fields.code != nil else {
            throw .rejected(status: 200, code: "UNREADABLE_ANSWER", message: "a verified answer has no code")
        }
        return .answer(Answer(fields: fields, body: response.body))
    }

    /// A verified success must be about this order.
    private static func checkOrder(_ answer: Answer, _ trade: TradeReference) throws(ProviderCallError) {
        if let outTradeNo = answer.fields.outTradeNo, outTradeNo != trade.orderID {
            throw .rejected(
                status: 200,
                code: "OTHER_ORDER",
                message: "the answer is about out_trade_no \(outTradeNo.prefix(64)), not \(trade.orderID.prefix(64))"
            )
        }
    }

    /// A verified refusal that is not about the trade's state: `40001` (missing parameter),
    /// `40002` (bad parameter or signature), `40006` (no permission), `20001` (authorization), or a
    /// business failure not listed.
    private static func rejection(_ answer: Answer) -> ProviderCallError {
        let fields = answer.fields
        return .rejected(
            status: 200,
            code: [fields.code, fields.subCode].compactMap { $0.map { String($0.prefix(64)) } }.joined(separator: " "),
            message: String((fields.subMsg ?? fields.msg ?? "no message").prefix(200))
        )
    }
}
