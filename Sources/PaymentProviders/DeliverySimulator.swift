import Crypto
public import Foundation
public import Payments
public import _CryptoExtras

/// Builds correctly signed deliveries as each provider would send them: for `paynotify simulate`,
/// demos and load tests against the development configuration. The provider side of each adapter.
public struct DeliverySimulator: Sendable {
    /// What the simulated payment did.
    public enum Outcome: String, Sendable, CaseIterable {
        case processing, progress, succeeded, failed, canceled
    }

    /// The signing material, matching the server's configuration.
    public struct Credentials: Sendable {
        public var sandboxSecret: String?
        public var stripeSecret: String?
        public var wechatPaySerial: String?
        public var wechatPayPrivateKey: _RSA.Signing.PrivateKey?
        public var wechatPayAPIv3Key: String?
        /// The `mchid` and `appid` written into WeChat Pay transactions; `1900000000` and
        /// `wxdevappid000000` when nil.
        public var wechatPayMerchantID: String?
        public var wechatPayAppID: String?
        public var alipayPrivateKey: _RSA.Signing.PrivateKey?
        public var alipayAppID: String?

        public init() {}
    }

    public struct SimulationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public let credentials: Credentials

    public init(credentials: Credentials) {
        self.credentials = credentials
    }

    /// The headers and body of one delivery.
    ///
    /// - Parameters:
    ///   - orderID: the order as the provider names it (our id, which WeChat Pay and Alipay call out_trade_no).
    ///   - paid: what the provider reports as paid; send the order's price unless testing a mismatch.
    ///   - percent: for a sandbox `progress`, the percentage it reports, and `stage` its stage.
    ///   - paymentID: the provider's own id for the payment (WeChat Pay's `transaction_id`, Alipay's
    ///     `trade_no`, Stripe's PaymentIntent `pi_…`), for a caller whose API answers must agree with
    ///     its callbacks; made up from `eventID` when nil. The sandbox has none.
    public func delivery(
        provider: Provider,
        orderID: String,
        outcome: Outcome,
        paid: Money,
        now: Date,
        eventID: String = UUID().uuidString.lowercased(),
        percent: Int = 50,
        stage: String = "paying",
        paymentID: String? = nil
    ) throws(SimulationError) -> WebhookRequest {
        switch provider {
        case .sandbox:
            try self.sandbox(
                orderID: orderID,
                outcome: outcome,
                paid: paid,
                now: now,
                eventID: eventID,
                progress: (percent, stage)
            )
        case .stripe:
            try self.stripe(orderID: orderID, outcome: outcome, paid: paid, now: now, eventID: eventID, id: paymentID)
        case .wechatpay:
            try self.wechatPay(
                orderID: orderID,
                outcome: outcome,
                paid: paid,
                now: now,
                eventID: eventID,
                id: paymentID
            )
        case .alipay:
            try self.alipay(orderID: orderID, outcome: outcome, paid: paid, now: now, eventID: eventID, id: paymentID)
        }
    }

    /// The headers and body of the notification of a full refund, as each provider sends it: the
    /// sandbox's `payment.refunded`, Stripe's `charge.refunded` (the charge fully refunded, with the
    /// order id in its metadata), WeChat Pay's `REFUND.SUCCESS`, Alipay's `TRADE_CLOSED` carrying
    /// `refund_fee` and `gmt_refund` (a full refund closes the trade).
    ///
    /// - Parameters:
    ///   - refunded: the amount given back, which is also the amount that was paid.
    ///   - paymentID: as for ``delivery(provider:orderID:outcome:paid:now:eventID:percent:stage:paymentID:)``.
    public func refundDelivery(
        provider: Provider,
        orderID: String,
        refunded: Money,
        now: Date,
        eventID: String = UUID().uuidString.lowercased(),
        paymentID: String? = nil
    ) throws(SimulationError) -> WebhookRequest {
        switch provider {
        case .sandbox:
            guard let secret = self.credentials.sandboxSecret else {
                throw SimulationError(description: "no sandbox secret configured")
            }
            let payload = SandboxAdapter.Payload(
                id: "evt_\(eventID)",
                type: "payment.refunded",
                orderID: orderID,
                amount: refunded.amount,
                currency: refunded.currency,
                progress: nil,
                stage: nil,
                message: nil
            )
            return Self.sandboxRequest(body: try Self.json(payload), now: now, secret: secret)
        case .stripe:
            let charge: [String: Any] = [
                "id": "ch_sim_\(eventID.prefix(12))", "object": "charge", "amount": refunded.amount,
                "amount_refunded": refunded.amount, "refunded": true, "currency": refunded.currency.lowercased(),
                "payment_intent": paymentID ?? "pi_sim_\(eventID.prefix(12))", "metadata": ["order_id": orderID],
            ]
            return try self.stripeEvent(type: "charge.refunded", object: charge, now: now, eventID: eventID)
        case .wechatpay:
            let transactionID = paymentID ?? Self.wechatPayTransactionID(eventID)
            let refund = try Self.json([
                "mchid": self.credentials.wechatPayMerchantID ?? Self.wechatPayDefaultMerchantID,
                "out_trade_no": orderID, "transaction_id": transactionID,
                "out_refund_no": "rf_\(orderID)", "refund_id": "5030\(transactionID.suffix(24))",
                "refund_status": "SUCCESS", "success_time": ISO8601DateFormatter().string(from: now),
                "user_received_account": "simulated account",
                "amount": [
                    "total": refunded.amount, "refund": refunded.amount, "payer_total": refunded.amount,
                    "payer_refund": refunded.amount,
                ],
            ])
            return try self.wechatPayNotification(
                eventType: "REFUND.SUCCESS",
                originalType: "refund",
                resource: refund,
                now: now,
                eventID: eventID
            )
        case .alipay:
            guard refunded.currency == "CNY" else { throw SimulationError(description: "Alipay trades are in CNY") }
            let yuan = Self.yuan(refunded.amount)
            return try self.alipayNotification(
                [
                    "notify_time": AlipaySignature.beijingTimestamp(now), "notify_type": "trade_status_sync",
                    "notify_id": eventID, "charset": "utf-8", "version": "1.0",
                    "trade_no": paymentID ?? Self.alipayTradeNo(eventID), "out_trade_no": orderID,
                    "out_biz_no": "rf_\(orderID)", "trade_status": "TRADE_CLOSED", "total_amount": yuan,
                    "refund_fee": yuan, "gmt_refund": AlipaySignature.beijingTimestamp(now),
                    "gmt_close": AlipaySignature.beijingTimestamp(now), "subject": "simulated order",
                ]
            )
        }
    }

    private func sandbox(
        orderID: String,
        outcome: Outcome,
        paid: Money,
        now: Date,
        eventID: String,
        progress: (percent: Int, stage: String)
    ) throws(SimulationError) -> WebhookRequest {
        guard let secret = self.credentials.sandboxSecret else {
            throw SimulationError(description: "no sandbox secret configured")
        }
        let payload = SandboxAdapter.Payload(
            id: "evt_\(eventID)",
            type: "payment.\(outcome.rawValue)",
            orderID: orderID,
            amount: outcome == .succeeded ? paid.amount : nil,
            currency: outcome == .succeeded ? paid.currency : nil,
            progress: outcome == .progress ? progress.percent : nil,
            stage: outcome == .progress ? progress.stage : nil,
            message: nil
        )
        // A type, not a dictionary through JSONSerialization: bridging each value and sorting
        // the keys was the load generator's largest cost per webhook (BENCHMARKS.md).
        return Self.sandboxRequest(body: try Self.json(payload), now: now, secret: secret)
    }

    private static func sandboxRequest(body: [UInt8], now: Date, secret: String) -> WebhookRequest {
        let timestamp = Int(now.timeIntervalSince1970)
        return WebhookRequest(
            headers: [
                "Sandbox-Signature": TimestampedSignature.header(
                    body: body,
                    timestamp: Int64(timestamp),
                    secret: secret
                )
            ],
            body: body
        )
    }

    private func stripe(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String, id: String?)
        throws(SimulationError) -> WebhookRequest
    {
        let type: String
        let status: String
        switch outcome {
        case .processing: (type, status) = ("payment_intent.processing", "processing")
        case .succeeded: (type, status) = ("payment_intent.succeeded", "succeeded")
        case .failed: (type, status) = ("payment_intent.payment_failed", "requires_payment_method")
        case .canceled: (type, status) = ("payment_intent.canceled", "canceled")
        case .progress: throw SimulationError(description: "Stripe reports no progress; only the sandbox does")
        }
        let intent: [String: Any] = [
            "id": id ?? "pi_sim_\(eventID.prefix(12))", "object": "payment_intent", "amount": paid.amount,
            "amount_received": outcome == .succeeded ? paid.amount : 0, "currency": paid.currency.lowercased(),
            "metadata": ["order_id": orderID], "status": status,
        ]
        return try self.stripeEvent(type: type, object: intent, now: now, eventID: eventID)
    }

    /// A Stripe event of `type` about `object`, signed with the endpoint secret.
    private func stripeEvent(type: String, object: [String: Any], now: Date, eventID: String)
        throws(SimulationError) -> WebhookRequest
    {
        guard let secret = self.credentials.stripeSecret else {
            throw SimulationError(description: "no Stripe secret configured")
        }
        let body = try Self.json([
            "id": "evt_sim_\(eventID)", "object": "event", "type": type, "created": Int(now.timeIntervalSince1970),
            "livemode": false, "data": ["object": object],
        ])
        let timestamp = Int(now.timeIntervalSince1970)
        return WebhookRequest(
            headers: [
                "Stripe-Signature": TimestampedSignature.header(body: body, timestamp: Int64(timestamp), secret: secret)
            ],
            body: body
        )
    }

    private func wechatPay(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String, id: String?)
        throws(SimulationError) -> WebhookRequest
    {
        let tradeState: String
        switch outcome {
        case .processing: tradeState = "USERPAYING"
        case .succeeded: tradeState = "SUCCESS"
        case .failed: tradeState = "PAYERROR"
        case .canceled: tradeState = "CLOSED"
        case .progress: throw SimulationError(description: "WeChat Pay reports no progress; only the sandbox does")
        }
        let transaction = try Self.json([
            "appid": self.credentials.wechatPayAppID ?? "wxdevappid000000",
            "mchid": self.credentials.wechatPayMerchantID ?? Self.wechatPayDefaultMerchantID, "out_trade_no": orderID,
            "transaction_id": id ?? Self.wechatPayTransactionID(eventID), "trade_type": "NATIVE",
            "trade_state": tradeState, "trade_state_desc": "simulated \(outcome.rawValue)",
            "amount": [
                "total": paid.amount, "payer_total": paid.amount, "currency": paid.currency,
                "payer_currency": paid.currency,
            ],
            "success_time": ISO8601DateFormatter().string(from: now),
        ])
        return try self.wechatPayNotification(
            eventType: tradeState == "SUCCESS" ? "TRANSACTION.SUCCESS" : "TRANSACTION.\(tradeState)",
            originalType: "transaction",
            resource: transaction,
            now: now,
            eventID: eventID
        )
    }

    /// A WeChat Pay notification of `eventType` whose resource, `resource` encrypted with the APIv3
    /// key, is of `originalType` (`transaction`, `refund`); signed with the platform key.
    private func wechatPayNotification(
        eventType: String,
        originalType: String,
        resource: [UInt8],
        now: Date,
        eventID: String
    ) throws(SimulationError) -> WebhookRequest {
        guard let serial = self.credentials.wechatPaySerial, let privateKey = self.credentials.wechatPayPrivateKey,
            let apiV3Key = self.credentials.wechatPayAPIv3Key
        else { throw SimulationError(description: "no WeChat Pay serial, private key or APIv3 key configured") }
        let nonce = Self.randomAlphanumerics(12)
        let associatedData = originalType
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.seal(
                resource,
                using: SymmetricKey(data: Array(apiV3Key.utf8)),
                nonce: try AES.GCM.Nonce(data: Array(nonce.utf8)),
                authenticating: Array(associatedData.utf8)
            )
        } catch {
            throw SimulationError(description: "could not encrypt the resource: \(error)")
        }
        let body = try Self.json([
            "id": eventID, "create_time": ISO8601DateFormatter().string(from: now),
            "event_type": eventType, "resource_type": "encrypt-resource", "summary": "simulated",
            "resource": [
                "algorithm": "AEAD_AES_256_GCM", "ciphertext": (sealed.ciphertext + sealed.tag).base64EncodedString(),
                "associated_data": associatedData, "original_type": originalType, "nonce": nonce,
            ],
        ])
        let timestamp = String(Int(now.timeIntervalSince1970))
        let headerNonce = Self.randomAlphanumerics(32)
        let message = WeChatPaySignature.responseMessage(timestamp: timestamp, nonce: headerNonce, body: body)
        let signature: String
        do {
            signature = try privateKey.pkcs1SHA256Signature(for: message)
        } catch {
            throw SimulationError(description: "could not sign: \(error)")
        }
        return WebhookRequest(
            headers: [
                "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": headerNonce, "Wechatpay-Serial": serial,
                "Wechatpay-Signature": signature, "Wechatpay-Signature-Type": WeChatPaySignature.scheme,
                "Content-Type": "application/json",
            ],
            body: body
        )
    }

    private func alipay(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String, id: String?)
        throws(SimulationError) -> WebhookRequest
    {
        guard paid.currency == "CNY" else { throw SimulationError(description: "Alipay trades are in CNY") }
        let tradeStatus: String
        switch outcome {
        case .processing: tradeStatus = "WAIT_BUYER_PAY"
        case .succeeded: tradeStatus = "TRADE_SUCCESS"
        // Alipay has no failure notification: an unpaid trade closes.
        case .canceled, .failed: tradeStatus = "TRADE_CLOSED"
        case .progress: throw SimulationError(description: "Alipay reports no progress; only the sandbox does")
        }
        let yuan = Self.yuan(paid.amount)
        var parameters = [
            "notify_time": AlipaySignature.beijingTimestamp(now), "notify_type": "trade_status_sync",
            "notify_id": eventID,
            "charset": "utf-8", "version": "1.0", "trade_no": id ?? Self.alipayTradeNo(eventID),
            "out_trade_no": orderID, "trade_status": tradeStatus, "total_amount": yuan, "subject": "simulated order",
        ]
        if outcome == .succeeded {
            parameters["gmt_payment"] = AlipaySignature.beijingTimestamp(now)
            parameters["receipt_amount"] = yuan
            parameters["buyer_pay_amount"] = yuan
        }
        return try self.alipayNotification(parameters)
    }

    /// An Alipay notification of `parameters` (and the app id), signed with Alipay's key and
    /// form-encoded.
    private func alipayNotification(_ parameters: [String: String]) throws(SimulationError) -> WebhookRequest {
        guard let privateKey = self.credentials.alipayPrivateKey, let appID = self.credentials.alipayAppID else {
            throw SimulationError(description: "no Alipay private key or app id configured")
        }
        var parameters = parameters
        parameters["app_id"] = appID
        let signature: String
        do {
            signature = try privateKey.pkcs1SHA256Signature(for: AlipaySignature.content(parameters))
        } catch {
            throw SimulationError(description: "could not sign: \(error)")
        }
        parameters["sign_type"] = "RSA2"
        parameters["sign"] = signature
        let body = parameters.sorted { $0.key < $1.key }.map {
            "\(Self.formEncode($0.key))=\(Self.formEncode($0.value))"
        }
        .joined(separator: "&")
        return WebhookRequest(
            headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
            body: Array(body.utf8)
        )
    }

    // MARK: Helpers

    private static let wechatPayDefaultMerchantID = "1900000000"

    private static func wechatPayTransactionID(_ eventID: String) -> String {
        "4200000000\(eventID.filter(\.isNumber).prefix(18))"
    }

    private static func alipayTradeNo(_ eventID: String) -> String { "2026\(eventID.filter(\.isNumber).prefix(20))" }

    /// Fen as Alipay's yuan text with two decimals.
    private static func yuan(_ fen: Int64) -> String { "\(fen / 100).\(String(format: "%02d", fen % 100))" }

    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static func json(_ object: [String: Any]) throws(SimulationError) -> [UInt8] {
        try Self.encoding {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        }
    }

    private static func json(_ value: some Encodable) throws(SimulationError) -> [UInt8] {
        try Self.encoding { try Self.encoder.encode(value) }
    }

    /// The bytes `encode` makes; its failure as a ``SimulationError``.
    private static func encoding(_ encode: () throws -> Data) throws(SimulationError) -> [UInt8] {
        do {
            return Array(try encode())
        } catch {
            throw SimulationError(description: "could not encode the payload: \(error)")
        }
    }

    private static func randomAlphanumerics(_ count: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    /// application/x-www-form-urlencoded: unreserved characters stay, space is `+`, the rest is %XX of UTF-8.
    private static func formEncode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                encoded.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: " "):
                encoded.append("+")
            default:
                encoded += String(format: "%%%02X", byte)
            }
        }
        return encoded
    }
}
