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
    public func delivery(
        provider: Provider,
        orderID: String,
        outcome: Outcome,
        paid: Money,
        now: Date,
        eventID: String = UUID().uuidString.lowercased(),
        percent: Int = 50,
        stage: String = "paying"
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
        case .stripe: try self.stripe(orderID: orderID, outcome: outcome, paid: paid, now: now, eventID: eventID)
        case .wechatpay: try self.wechatPay(orderID: orderID, outcome: outcome, paid: paid, now: now, eventID: eventID)
        case .alipay: try self.alipay(orderID: orderID, outcome: outcome, paid: paid, now: now, eventID: eventID)
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
        let body = try Self.json(payload)
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

    private func stripe(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String)
        throws(SimulationError) -> WebhookRequest
    {
        guard let secret = self.credentials.stripeSecret else {
            throw SimulationError(description: "no Stripe secret configured")
        }
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
            "id": "pi_sim_\(eventID.prefix(12))", "object": "payment_intent", "amount": paid.amount,
            "amount_received": outcome == .succeeded ? paid.amount : 0, "currency": paid.currency.lowercased(),
            "metadata": ["order_id": orderID], "status": status,
        ]
        let body = try Self.json([
            "id": "evt_sim_\(eventID)", "object": "event", "type": type, "created": Int(now.timeIntervalSince1970),
            "livemode": false, "data": ["object": intent],
        ])
        let timestamp = Int(now.timeIntervalSince1970)
        return WebhookRequest(
            headers: [
                "Stripe-Signature": TimestampedSignature.header(body: body, timestamp: Int64(timestamp), secret: secret)
            ],
            body: body
        )
    }

    private func wechatPay(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String)
        throws(SimulationError) -> WebhookRequest
    {
        guard let serial = self.credentials.wechatPaySerial, let privateKey = self.credentials.wechatPayPrivateKey,
            let apiV3Key = self.credentials.wechatPayAPIv3Key
        else { throw SimulationError(description: "no WeChat Pay serial, private key or APIv3 key configured") }
        let tradeState: String
        switch outcome {
        case .processing: tradeState = "USERPAYING"
        case .succeeded: tradeState = "SUCCESS"
        case .failed: tradeState = "PAYERROR"
        case .canceled: tradeState = "CLOSED"
        case .progress: throw SimulationError(description: "WeChat Pay reports no progress; only the sandbox does")
        }
        let transaction = try Self.json([
            "appid": "wxdevappid000000", "mchid": "1900000000", "out_trade_no": orderID,
            "transaction_id": "4200000000\(eventID.filter(\.isNumber).prefix(18))", "trade_type": "NATIVE",
            "trade_state": tradeState, "trade_state_desc": "simulated \(outcome.rawValue)",
            "amount": [
                "total": paid.amount, "payer_total": paid.amount, "currency": paid.currency,
                "payer_currency": paid.currency,
            ],
            "success_time": ISO8601DateFormatter().string(from: now),
        ])
        let nonce = Self.randomAlphanumerics(12)
        let associatedData = "transaction"
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.seal(
                transaction,
                using: SymmetricKey(data: Array(apiV3Key.utf8)),
                nonce: try AES.GCM.Nonce(data: Array(nonce.utf8)),
                authenticating: Array(associatedData.utf8)
            )
        } catch {
            throw SimulationError(description: "could not encrypt the resource: \(error)")
        }
        let body = try Self.json([
            "id": eventID, "create_time": ISO8601DateFormatter().string(from: now),
            "event_type": tradeState == "SUCCESS" ? "TRANSACTION.SUCCESS" : "TRANSACTION.\(tradeState)",
            "resource_type": "encrypt-resource", "summary": "simulated",
            "resource": [
                "algorithm": "AEAD_AES_256_GCM", "ciphertext": (sealed.ciphertext + sealed.tag).base64EncodedString(),
                "associated_data": associatedData, "original_type": "transaction", "nonce": nonce,
            ],
        ])
        let timestamp = String(Int(now.timeIntervalSince1970))
        let headerNonce = Self.randomAlphanumerics(32)
        let message = Array("\(timestamp)\n\(headerNonce)\n".utf8) + body + Array("\n".utf8)
        let signature: _RSA.Signing.RSASignature
        do {
            signature = try privateKey.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        } catch {
            throw SimulationError(description: "could not sign: \(error)")
        }
        return WebhookRequest(
            headers: [
                "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": headerNonce, "Wechatpay-Serial": serial,
                "Wechatpay-Signature": signature.rawRepresentation.base64EncodedString(),
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json",
            ],
            body: body
        )
    }

    private func alipay(orderID: String, outcome: Outcome, paid: Money, now: Date, eventID: String)
        throws(SimulationError) -> WebhookRequest
    {
        guard let privateKey = self.credentials.alipayPrivateKey, let appID = self.credentials.alipayAppID else {
            throw SimulationError(description: "no Alipay private key or app id configured")
        }
        guard paid.currency == "CNY" else { throw SimulationError(description: "Alipay trades are in CNY") }
        let tradeStatus: String
        switch outcome {
        case .processing: tradeStatus = "WAIT_BUYER_PAY"
        case .succeeded: tradeStatus = "TRADE_SUCCESS"
        // Alipay has no failure notification: an unpaid trade closes.
        case .canceled, .failed: tradeStatus = "TRADE_CLOSED"
        case .progress: throw SimulationError(description: "Alipay reports no progress; only the sandbox does")
        }
        let beijing = DateFormatter()
        beijing.locale = Locale(identifier: "en_US_POSIX")
        beijing.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        beijing.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let yuan = "\(paid.amount / 100).\(String(format: "%02d", paid.amount % 100))"
        var parameters = [
            "notify_time": beijing.string(from: now), "notify_type": "trade_status_sync", "notify_id": eventID,
            "app_id": appID, "charset": "utf-8", "version": "1.0",
            "trade_no": "2026\(eventID.filter(\.isNumber).prefix(20))",
            "out_trade_no": orderID, "trade_status": tradeStatus, "total_amount": yuan, "subject": "simulated order",
        ]
        if outcome == .succeeded {
            parameters["gmt_payment"] = beijing.string(from: now)
            parameters["receipt_amount"] = yuan
            parameters["buyer_pay_amount"] = yuan
        }
        let content = parameters.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            .map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        let signature: _RSA.Signing.RSASignature
        do {
            signature = try privateKey.signature(
                for: SHA256.hash(data: Array(content.utf8)),
                padding: .insecurePKCS1v1_5
            )
        } catch {
            throw SimulationError(description: "could not sign: \(error)")
        }
        parameters["sign_type"] = "RSA2"
        parameters["sign"] = signature.rawRepresentation.base64EncodedString()
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
