import Foundation
import PaymentProviders
import Payments
import Testing
import _CryptoExtras

@Suite("AlipayAdapter")
struct AlipayAdapterTests {
    private static let appID = "2021000117600000"

    /// 2026-09-21 14:13:20 UTC, which is 22:13:20 in Beijing.
    private let now = Date(timeIntervalSince1970: 1_790_000_000)
    private let adapter = AlipayAdapter(
        publicKeys: [TestKeys.first.publicKey, TestKeys.second.publicKey],
        appID: Self.appID,
        tolerance: nil
    )

    /// A trade notification's parameters as Alipay sends them, `overrides` replacing or adding some.
    private func fields(_ status: String, _ overrides: [(String, String)] = []) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("gmt_create", "2026-09-21 22:12:58"), ("charset", "utf-8"), ("seller_email", "shop@example.com"),
            ("subject", "Order ord_1 & more"), ("buyer_id", "2088102534368455"), ("invoice_amount", "19.99"),
            ("notify_id", "2026092100222221320012345678901234"), ("notify_type", "trade_status_sync"),
            ("trade_status", status), ("receipt_amount", "19.99"), ("app_id", Self.appID),
            ("seller_id", "2088531891668739"), ("gmt_payment", "2026-09-21 22:13:19"),
            ("notify_time", "2026-09-21 22:13:20"), ("version", "1.0"), ("out_trade_no", "ord_1"),
            ("total_amount", "19.99"), ("trade_no", "2026092122001468450512505578"), ("auth_app_id", Self.appID),
            ("fund_bill_list", #"[{"amount":"19.99","fundChannel":"ALIPAYACCOUNT"}]"#), ("point_amount", "0.00"),
        ]
        for (name, value) in overrides {
            if let index = fields.firstIndex(where: { $0.0 == name }) {
                fields[index].1 = value
            } else {
                fields.append((name, value))
            }
        }
        return fields
    }

    private func request(_ body: String) -> WebhookRequest {
        WebhookRequest(headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Array(body.utf8))
    }

    private func rejection(_ body: String, adapter: AlipayAdapter? = nil) -> WebhookRejection? {
        #expect(throws: WebhookRejection.self) {
            try (adapter ?? self.adapter).verify(self.request(body), now: self.now)
        }
    }

    /// A signed TRADE_SUCCESS maps to success with `total_amount` in CNY fen, keyed by `notify_id`.
    @Test func validDelivery() throws {
        let body = alipayBody(self.fields("TRADE_SUCCESS"))
        let delivery = try self.adapter.verify(self.request(body), now: self.now)
        #expect(delivery.provider == .alipay)
        #expect(delivery.eventID == "2026092100222221320012345678901234")
        #expect(delivery.eventType == "TRADE_SUCCESS")
        #expect(delivery.orderReference == "ord_1")
        #expect(delivery.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY")))
        #expect(delivery.rawBody == Array(body.utf8))
    }

    /// Each `trade_status` maps to its kind; a refund on TRADE_SUCCESS (partial) is ignored, on TRADE_CLOSED (full) kept.
    @Test(
        arguments: [
            ("WAIT_BUYER_PAY", [], PaymentEvent(kind: .awaitingPayment)),
            (
                "TRADE_SUCCESS", [("refund_fee", "0.00")],
                PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY"))
            ),
            (
                "TRADE_SUCCESS",
                [("refund_fee", "5.00"), ("gmt_refund", "2026-09-21 22:13:19.320"), ("out_biz_no", "r1")], nil
            ),
            ("TRADE_SUCCESS", [("gmt_refund", "2026-09-21 22:13:19.320")], nil),
            ("TRADE_FINISHED", [], PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY"))),
            (
                "TRADE_FINISHED", [("refund_fee", "0.00")],
                PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY"))
            ),
            ("TRADE_CLOSED", [("gmt_close", "2026-09-21 22:13:19")], PaymentEvent(kind: .canceled)),
            (
                "TRADE_CLOSED",
                [
                    ("refund_fee", "19.99"), ("gmt_refund", "2026-09-21 22:13:19.320"),
                    ("gmt_close", "2026-09-21 22:13:19"),
                ],
                PaymentEvent(kind: .refunded, paid: Money(amount: 1999, currency: "CNY"))
            ),
            ("TRADE_PENDING", [], nil),
        ] as [(String, [(String, String)], PaymentEvent?)]
    )
    func tradeStatuses(status: String, overrides: [(String, String)], expected: PaymentEvent?) throws {
        let delivery = try self.adapter.verify(self.request(alipayBody(self.fields(status, overrides))), now: self.now)
        #expect(delivery.event == expected)
        #expect(delivery.eventType == status)
        #expect(delivery.orderReference == "ord_1")
    }

    /// An empty `gmt_refund` is unsigned, so it is read as absent: it cannot turn a timeout close into a refund.
    @Test func emptyValuesAreAbsent() throws {
        let closed = alipayBody(self.fields("TRADE_CLOSED"))
        let delivery = try self.adapter.verify(self.request(closed + "&gmt_refund=&refund_fee="), now: self.now)
        #expect(delivery.event == PaymentEvent(kind: .canceled))
    }

    /// A notification signed with its empty values included (older signers) still verifies.
    @Test func emptyValuesSignedByOlderSigners() throws {
        let body = alipayBody(self.fields("TRADE_SUCCESS", [("passback_params", "")]), signEmptyValues: true)
        #expect(try self.adapter.verify(self.request(body), now: self.now).event?.kind == .succeeded)
    }

    /// `total_amount` is read as decimal yuan into fen, exactly; more than two decimals or junk is malformed.
    @Test(
        arguments: [
            ("0.01", 1), ("19.99", 1999), ("100", 10_000), ("1.5", 150), ("0.10", 10), ("007.00", 700),
            ("100000000.00", 10_000_000_000), ("1.234", nil), ("abc", nil), ("-1", nil), ("", nil), ("1.", nil),
            (".5", nil), ("+1", nil), (" 1.00", nil), ("1.00 ", nil), ("1e2", nil), ("1,00", nil), ("1.2.3", nil),
            ("１", nil), ("٣", nil), ("9999999999999999", nil),
        ] as [(String, Int64?)]
    )
    func amounts(text: String, fen: Int64?) {
        let body = alipayBody(self.fields("TRADE_SUCCESS", [("total_amount", text)]))
        if let fen {
            let delivery = try? self.adapter.verify(self.request(body), now: self.now)
            #expect(delivery?.event?.paid == Money(amount: fen, currency: "CNY"))
        } else {
            #expect(self.rejection(body)?.reason == .malformedPayload)
        }
    }

    /// A refund amount that is not yuan is malformed too.
    @Test func malformedRefundFee() {
        let body = alipayBody(self.fields("TRADE_CLOSED", [("refund_fee", "19.999")]))
        #expect(self.rejection(body)?.reason == .malformedPayload)
    }

    /// Either configured Alipay key verifies (a key being replaced); an unknown key does not.
    @Test func secondKeyAndWrongKey() throws {
        let second = alipayBody(self.fields("TRADE_SUCCESS"), key: TestKeys.second)
        #expect(try self.adapter.verify(self.request(second), now: self.now).event?.kind == .succeeded)
        let wrong = alipayBody(self.fields("TRADE_SUCCESS"), key: TestKeys.attacker)
        #expect(self.rejection(wrong)?.reason == .invalidSignature)
        #expect(self.rejection(wrong)?.status == 401)
    }

    /// A parameter changed, added or dropped after signing breaks the signature.
    @Test func tampered() {
        let body = alipayBody(self.fields("TRADE_SUCCESS"))
        for forged in [
            body.replacingOccurrences(of: "total_amount=19.99", with: "total_amount=0.01"),
            body + "&refund_fee=19.99",
            body.replacingOccurrences(of: "&point_amount=0.00", with: ""),
            body.replacingOccurrences(of: "Order+ord_1", with: "Order%20ord_1%20"),
        ] {
            #expect(self.rejection(forged)?.reason == .invalidSignature)
        }
    }

    /// `sign_type` may be absent (read as RSA2); any other scheme, or a missing or non-base64 `sign`, is refused.
    @Test func signParameters() throws {
        let unsigned = formEncoded(self.fields("TRADE_SUCCESS"))
        #expect(self.rejection(unsigned)?.reason == .missingSignature)
        #expect(self.rejection(unsigned + "&sign=")?.reason == .missingSignature)
        #expect(self.rejection(unsigned + "&sign=%2A%2A%2A")?.reason == .invalidSignature)
        let absentType = alipayBody(self.fields("TRADE_SUCCESS"), signType: nil)
        #expect(try self.adapter.verify(self.request(absentType), now: self.now).event?.kind == .succeeded)
        let sha1 = alipayBody(self.fields("TRADE_SUCCESS"), signType: "RSA")
        #expect(self.rejection(sha1)?.reason == .invalidSignature)
    }

    /// A correctly signed notification for another app is refused as not ours (400).
    @Test func otherAppID() {
        let other = alipayBody(self.fields("TRADE_SUCCESS", [("app_id", "2021000999999999")]))
        let rejection = self.rejection(other)
        #expect(rejection?.reason == .malformedPayload)
        #expect(rejection?.status == 400)
    }

    /// Bodies that are not UTF-8 form data, repeat a parameter, or name another charset are malformed.
    @Test(arguments: [
        "sign=abc&subject=%zz", "sign=abc&subject=%4", "sign=abc&subject=100%", "sign=abc&subject=%FF%FE",
        "sign=abc&notify_id=1&notify_id=2", "sign=abc&subject=%E4%BD",
    ])
    func malformedBodies(body: String) {
        let rejection = self.rejection(body)
        #expect(rejection?.reason == .malformedPayload)
        #expect(rejection?.status == 400)
    }

    /// Only UTF-8 is accepted as `charset`, since the signed text is its UTF-8 bytes.
    @Test func otherCharset() {
        #expect(
            self.rejection(alipayBody(self.fields("TRADE_SUCCESS", [("charset", "GBK")])))?.reason == .malformedPayload
        )
    }

    /// Signed notifications without `notify_id`, or without any type, are malformed; a non-trade one is ignored.
    @Test func nonTradeNotifications() throws {
        let noID = self.fields("TRADE_SUCCESS").filter { $0.0 != "notify_id" }
        #expect(self.rejection(alipayBody(noID))?.reason == .malformedPayload)
        let untyped = self.fields("TRADE_SUCCESS").filter { $0.0 != "trade_status" && $0.0 != "notify_type" }
        #expect(self.rejection(alipayBody(untyped))?.reason == .malformedPayload)
        let other = self.fields("x").filter { $0.0 != "trade_status" }.map {
            $0.0 == "notify_type" ? ($0.0, "fund_sync") : $0
        }
        let delivery = try self.adapter.verify(self.request(alipayBody(other)), now: self.now)
        #expect(delivery.event == nil)
        #expect(delivery.eventType == "fund_sync")
    }

    /// With a tolerance, `notify_time` is read as Beijing time and checked both ways; without one it is not read.
    @Test(
        arguments: [
            ("2026-09-21 22:13:20", nil), ("2026-09-20 21:13:20", nil), ("2026-09-21 14:13:20", nil),
            ("2026-09-20 21:13:19", .timestampOutOfTolerance), ("2026-09-22 23:13:21", .timestampOutOfTolerance),
            ("2026-02-30 10:00:00", .malformedPayload), ("2026-09-21T22:13:20", .malformedPayload),
            ("", .malformedPayload),
        ] as [(String, WebhookRejection.Reason?)]
    )
    func notifyTimeWindow(notifyTime: String, reason: WebhookRejection.Reason?) {
        let windowed = AlipayAdapter(publicKeys: [TestKeys.first.publicKey], appID: Self.appID, tolerance: 25 * 3_600)
        let body = alipayBody(self.fields("TRADE_SUCCESS", [("notify_time", notifyTime)]))
        if let reason {
            #expect(self.rejection(body, adapter: windowed)?.reason == reason)
        } else {
            #expect(throws: Never.self) { try windowed.verify(self.request(body), now: self.now) }
        }
        #expect(throws: Never.self) { try self.adapter.verify(self.request(body), now: self.now) }
    }

    /// alipay-sdk-nodejs's real notification verifies (sign_type excluded) and maps to a 0.10 CNY payment.
    @Test func publishedNotification() throws {
        let vector = AlipayNotifyVector.self
        let adapter = try AlipayAdapter(publicKeyTexts: [vector.publicKey], appID: vector.appID, tolerance: 300)
        let now = Date(timeIntervalSince1970: vector.notifyTime)
        let delivery = try adapter.verify(self.request(vector.body), now: now)
        #expect(delivery.eventID == "2019081500222155624068450559358070")
        #expect(delivery.eventType == "TRADE_SUCCESS")
        #expect(delivery.orderReference == "20190815155618536-564-57")
        #expect(delivery.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 10, currency: "CNY")))

        let late = #expect(throws: WebhookRejection.self) {
            try adapter.verify(self.request(vector.body), now: now.addingTimeInterval(301))
        }
        #expect(late?.reason == .timestampOutOfTolerance)
        let tampered = vector.body.replacingOccurrences(of: "+500%E4%BA%BA", with: "+501%E4%BA%BA")
        #expect(self.rejection(tampered, adapter: adapter)?.reason == .invalidSignature)
        #expect(self.rejection(vector.wrongKeyBody, adapter: adapter)?.reason == .invalidSignature)
    }

    /// Key text is read as bare base64, PEM or a certificate (PEM or base64); junk and PKCS #1 are refused.
    @Test func keyTexts() throws {
        _ = try AlipayAdapter(
            publicKeyTexts: [
                AlipayNotifyVector.publicKey, TestKeys.first.publicKey.pemRepresentation,
                WeChatPayRSAVector.certificate,
                WeChatPayRSAVector.certificate.split(separator: "\n").dropFirst().dropLast().joined(),
            ],
            appID: Self.appID,
            tolerance: nil
        )
        for texts in [
            [], ["not base64!"], ["AAAA"], [TestKeys.first.publicKey.pemRepresentation, ""],
            [TestKeys.first.publicKey.pkcs1PEMRepresentation], [String(AlipayNotifyVector.publicKey.dropLast(4))],
        ] {
            #expect(throws: ProviderKeyError.self) {
                try AlipayAdapter(publicKeyTexts: texts, appID: Self.appID, tolerance: nil)
            }
        }
    }

    /// Success is exactly `success` as text; every failure is `fail`, with a 4xx or (our trouble) a 500.
    @Test func replies() {
        let plain = "text/plain; charset=utf-8"
        #expect(
            self.adapter.acknowledgement == WebhookReply(status: 200, contentType: plain, body: Array("success".utf8))
        )
        #expect(
            self.adapter.failure(WebhookRejection(.invalidSignature, "x"))
                == WebhookReply(status: 401, contentType: plain, body: Array("fail".utf8))
        )
        #expect(self.adapter.failure(nil) == WebhookReply(status: 500, contentType: plain, body: Array("fail".utf8)))
    }
}
