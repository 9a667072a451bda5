public import Foundation
public import Payments
public import _CryptoExtras

/// Alipay asynchronous trade notifications (异步通知, `notify_type=trade_status_sync`).
///
/// The body is `application/x-www-form-urlencoded` and carries its own signature: `sign` is the
/// base64 RSA2 (SHA256withRSA, PKCS #1 v1.5) signature, by the Alipay public key, of every other
/// parameter except `sign_type`, with empty values left out, sorted by name (byte order) and
/// joined as `name=value&…` with the values decoded, neither re-encoded nor trimmed. This is
/// Alipay's "V1" rule for trade notifications; the gateway rule that keeps `sign_type` is not used.
/// When that fails and some value is empty, the text with the empty values included is tried too,
/// as older Alipay signers kept them.
///
/// Statuses, resolved to an order through `out_trade_no`, amounts in yuan as decimal text:
/// - `WAIT_BUYER_PAY` → awaiting payment;
/// - `TRADE_SUCCESS` → succeeded, paid = `total_amount` CNY; but with a refund (`refund_fee` above
///   zero or a `gmt_refund`) it is a partial refund, acknowledged and ignored;
/// - `TRADE_FINISHED` → succeeded likewise: the refund period ended, or the product allows no refund.
///   It may come a year after the payment; the order state machine ignores the repeat;
/// - `TRADE_CLOSED` → refunded when it carries a refund (a full refund closes the trade), else canceled
///   (closed unpaid).
///
/// Other statuses and non-trade notifications are acknowledged and ignored. `notify_id` is the
/// idempotency key: Alipay keeps it across retries of one notification, and gives every new event
/// on a trade (payment, each refund, finish) a new one.
///
/// - Important: Empty values are not signed, so they are read as absent: an empty `gmt_refund`
///   added in transit must not turn a timeout close into a refund.
/// - Note: Alipay's signed text does not escape `&` or `=` inside values, so one signature also fits
///   the parameters cut differently at them: `a=1&b=2` re-sent as a single `a` of `1&b=2`, or a value
///   that itself holds `&name=` split in two. Nothing here can prevent that. What it allows is hiding
///   parameters inside the value sorted before them or garbling that value; the fields read here then
///   go missing or fail to parse rather than say something else, and the state machine refuses or
///   ignores what is left (a refund seen as a close or a success) for an order already paid.
public struct AlipayAdapter: WebhookAdapter {
    public let provider = Provider.alipay
    /// Alipay public keys (支付宝公钥, not the app's own), any of which may have signed.
    private let publicKeys: [_RSA.Signing.PublicKey]
    /// Our app's id: a correctly signed notification for another app of the same account is refused.
    private let appID: String
    /// How far `notify_time` may be from now, either way, or nil for no window.
    private let tolerance: TimeInterval?

    /// - Parameters:
    ///   - publicKeys: the Alipay public keys; several while one is replaced.
    ///   - appID: our `app_id`.
    ///   - tolerance: nil (the default, and what Alipay's SDKs do) for no time check; otherwise the
    ///     window for `notify_time`. Alipay retries with the original content for up to 24 h 22 min,
    ///     so anything under 25 hours refuses legitimate retries. The signature is the real defence;
    ///     replays are absorbed by `notify_id` and the order state machine.
    public init(publicKeys: [_RSA.Signing.PublicKey], appID: String, tolerance: TimeInterval?) {
        precondition(!publicKeys.isEmpty, "at least one Alipay public key")
        self.publicKeys = publicKeys
        self.appID = appID
        self.tolerance = tolerance
    }

    /// Builds the adapter from key text: bare base64 as Alipay's console shows it, a PEM public
    /// key, or the `alipayCertPublicKey_RSA2.crt` certificate of certificate mode.
    /// - Throws: when no key is given or a text is not an RSA key of 2048 bits or more.
    public init(publicKeyTexts: [String], appID: String, tolerance: TimeInterval?) throws(ProviderKeyError) {
        guard !publicKeyTexts.isEmpty else { throw ProviderKeyError("no Alipay public key is configured") }
        var keys: [_RSA.Signing.PublicKey] = []
        for (index, text) in publicKeyTexts.enumerated() {
            do {
                keys.append(try _RSA.Signing.PublicKey(providerText: text))
            } catch {
                throw ProviderKeyError("Alipay public key #\(index + 1): \(error.message)")
            }
        }
        self.init(publicKeys: keys, appID: appID, tolerance: tolerance)
    }

    public func verify(_ request: WebhookRequest, now: Date) throws(WebhookRejection) -> WebhookDelivery {
        var parameters: [String: String] = [:]
        for field in try formFields(request.body) {
            // A repeated name would leave it open which of the values was signed.
            guard parameters.updateValue(field.value, forKey: field.name) == nil else {
                throw WebhookRejection(.malformedPayload, "parameter \(field.name.prefix(64)) appears twice")
            }
        }
        try self.verifySignature(parameters)
        let notification = Notification(parameters: parameters)

        // After the signature, these are Alipay's words; `app_id` says whom they are for.
        guard notification["app_id"] == self.appID else {
            throw WebhookRejection(
                .malformedPayload,
                "the notification is for app_id \(notification["app_id"] ?? "(none)"), not \(self.appID)"
            )
        }
        if let tolerance = self.tolerance {
            guard let text = notification["notify_time"], let sent = Self.beijingTime(text) else {
                throw WebhookRejection(.malformedPayload, "notify_time is missing or not yyyy-MM-dd HH:mm:ss")
            }
            let age = now.timeIntervalSince1970 - sent
            guard abs(age) <= tolerance else {
                throw WebhookRejection.outOfTolerance("notified", age: age, tolerance: tolerance)
            }
        }
        guard let notifyID = notification["notify_id"], notifyID.count <= 255 else {
            throw WebhookRejection(.malformedPayload, "notify_id must be 1–255 characters")
        }
        guard let tradeStatus = notification["trade_status"] else {
            guard let notifyType = notification["notify_type"] else {
                throw WebhookRejection(.malformedPayload, "neither trade_status nor notify_type is present")
            }
            return WebhookDelivery(
                provider: .alipay,
                eventID: notifyID,
                eventType: notifyType,
                orderReference: nil,
                event: nil,
                rawBody: request.body
            )
        }
        let event: PaymentEvent?
        switch tradeStatus {
        case "WAIT_BUYER_PAY":
            event = PaymentEvent(kind: .awaitingPayment)
        case "TRADE_SUCCESS":
            // After a partial refund the trade stays TRADE_SUCCESS; that notification is no payment.
            event = try notification.hasRefund ? nil : PaymentEvent(kind: .succeeded, paid: notification.totalAmount)
        case "TRADE_FINISHED":
            // Final: no refund can follow, so it never announces one.
            event = PaymentEvent(kind: .succeeded, paid: try notification.totalAmount)
        case "TRADE_CLOSED":
            // A full refund closes the trade; a close without refund fields is an unpaid timeout.
            event =
                try notification.hasRefund
                ? PaymentEvent(kind: .refunded, paid: notification.refundFee)
                : PaymentEvent(kind: .canceled)
        default:
            event = nil
        }
        return WebhookDelivery(
            provider: .alipay,
            eventID: notifyID,
            eventType: tradeStatus,
            orderReference: notification["out_trade_no"],
            event: event,
            rawBody: request.body
        )
    }

    /// Exactly these seven letters: anything else makes Alipay send again.
    public var acknowledgement: WebhookReply { Self.text(200, "success") }

    /// Alipay reads only the body; anything but `success` is retried for about 25 hours.
    public func failure(_ rejection: WebhookRejection?) -> WebhookReply { Self.text(rejection?.status ?? 500, "fail") }

    private static func text(_ status: Int, _ body: String) -> WebhookReply {
        WebhookReply(status: status, contentType: "text/plain; charset=utf-8", body: Array(body.utf8))
    }

    /// Checks `sign` over the other parameters (see the type's documentation for the rule).
    private func verifySignature(_ parameters: [String: String]) throws(WebhookRejection) {
        guard let sign = parameters["sign"], !sign.isEmpty else {
            throw WebhookRejection(.missingSignature, "the notification has no sign parameter")
        }
        // `sign_type` is not signed, so its value proves nothing: whatever it says, only RSA2 is
        // ever checked. An absent one is read as RSA2 (every current notification says RSA2); an
        // explicit other scheme (`RSA`, SHA-1) is refused rather than verified as something else.
        if let signType = parameters["sign_type"], !signType.isEmpty, signType != "RSA2" {
            throw WebhookRejection(.invalidSignature, "sign_type \(signType.prefix(16)) is not accepted; only RSA2")
        }
        // The text is signed as UTF-8; another charset would be a different string to sign.
        if let charset = parameters["charset"]?.lowercased(), !charset.isEmpty, charset != "utf-8", charset != "utf8" {
            throw WebhookRejection(.malformedPayload, "charset \(charset.prefix(16)) is not supported; only utf-8")
        }
        guard let signature = Data(base64Encoded: sign).map(Array.init) else {
            throw WebhookRejection(.invalidSignature, "sign is not base64")
        }
        let signed = parameters.filter { !$0.key.isEmpty && $0.key != "sign" && $0.key != "sign_type" }
        var contents = [AlipaySignature.content(signed)]
        if signed.values.contains(where: \.isEmpty) {
            contents.append(AlipaySignature.content(signed, keepingEmpty: true))
        }
        let valid = contents.contains { content in
            self.publicKeys.contains { $0.isValidPKCS1SHA256Signature(signature, for: content) }
        }
        guard valid else { throw WebhookRejection(.invalidSignature, "sign does not verify with any Alipay key") }
    }

    /// `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no zone written) as Unix seconds; nil unless
    /// the text is exactly that and a real date.
    private static func beijingTime(_ text: String) -> TimeInterval? {
        let characters = Array(text.utf8)
        guard characters.count == 19, characters[4] == UInt8(ascii: "-"), characters[7] == UInt8(ascii: "-"),
            characters[10] == UInt8(ascii: " "), characters[13] == UInt8(ascii: ":"),
            characters[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for character in characters[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character) else { return nil }
                value = value * 10 + Int(character - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[month - 1]).contains(day) else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (March-based years; year > 0 here).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = shiftedYear / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return TimeInterval(days * 86_400 + hour * 3_600 + minute * 60 + second - 8 * 3_600)
    }

    /// Yuan as Alipay writes them (`"0.10"`, `"100"`, Number(9,2)) to fen, read as decimal text and
    /// never through floating point; nil for a sign, more than two decimals, or anything else.
    package static func fen(fromYuan text: String) -> Int64? {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        let digits = parts.map { part in part.map { Int64($0) - Int64(UInt8(ascii: "0")) } }
        // At most 15 digits of yuan: Number(9,2) needs 7, and 15 cannot overflow once times 100.
        guard (1...15).contains(digits[0].count), digits.count == 1 || (1...2).contains(digits[1].count),
            digits.allSatisfy({ $0.allSatisfy { (0...9).contains($0) } })
        else { return nil }
        let yuan = digits[0].reduce(0) { $0 * 10 + $1 }
        let fraction = digits.count == 2 ? digits[1] : []
        let fen = fraction.count == 2 ? fraction[0] * 10 + fraction[1] : (fraction.first ?? 0) * 10
        return yuan * 100 + fen
    }

    /// The signed parameters, with empty values read as absent.
    private struct Notification {
        let parameters: [String: String]

        subscript(name: String) -> String? {
            guard let value = self.parameters[name], !value.isEmpty else { return nil }
            return value
        }

        /// Whether this notification reports a refund: a `gmt_refund`, or a `refund_fee` above
        /// zero. (`refund_fee=0.00` comes with the late TRADE_FINISHED of a trade never refunded.)
        var hasRefund: Bool {
            get throws(WebhookRejection) {
                if self["gmt_refund"] != nil { return true }
                return try (self.refundFee?.amount ?? 0) > 0
            }
        }

        /// `total_amount` in CNY fen; required wherever a payment is reported.
        var totalAmount: Money {
            get throws(WebhookRejection) {
                guard let text = self["total_amount"] else {
                    throw WebhookRejection(.malformedPayload, "total_amount is missing")
                }
                return try Self.money(text, "total_amount")
            }
        }

        /// `refund_fee`, the cumulative amount refunded, in CNY fen, when present.
        var refundFee: Money? {
            get throws(WebhookRejection) {
                guard let text = self["refund_fee"] else { return nil }
                return try Self.money(text, "refund_fee")
            }
        }

        private static func money(_ text: String, _ name: String) throws(WebhookRejection) -> Money {
            guard let fen = AlipayAdapter.fen(fromYuan: text) else {
                throw WebhookRejection(
                    .malformedPayload,
                    "\(name) \(text.prefix(32)) is not yuan with at most two decimals"
                )
            }
            return Money(amount: fen, currency: "CNY")
        }
    }
}
