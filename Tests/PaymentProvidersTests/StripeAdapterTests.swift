import Foundation
import PaymentProviders
import Payments
import Testing

@Suite("StripeAdapter")
struct StripeAdapterTests {
    private let now = Date(timeIntervalSince1970: 1_790_000_000)
    private let adapter = StripeAdapter(secrets: ["whsec_new", "whsec_old"], tolerance: 300)

    private func body(type: String, object: String) -> String {
        #"{"id":"evt_1","object":"event","type":"\#(type)","created":1790000000,"data":{"object":\#(object)}}"#
    }

    private func intent(status: String, extra: String = "") -> String {
        #"{"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":1999,"currency":"usd","#
            + #""status":"\#(status)","metadata":{"order_id":"ord_1"}\#(extra)}"#
    }

    private func request(_ body: String, signature: String?) -> WebhookRequest {
        WebhookRequest(headers: signature.map { ["Stripe-Signature": $0] } ?? [:], body: Array(body.utf8))
    }

    private func signed(_ body: String, secret: String = "whsec_new", timestamp: Int = 1_790_000_000) -> WebhookRequest
    {
        self.request(body, signature: stripeSignature(body, secret: secret, timestamp: timestamp))
    }

    private func rejection(_ request: WebhookRequest) -> WebhookRejection? {
        #expect(throws: WebhookRejection.self) { try self.adapter.verify(request, now: self.now) }
    }

    /// A signed `payment_intent.succeeded` maps to success with `amount_received` in upper-case currency.
    @Test func validDelivery() throws {
        let body = self.body(type: "payment_intent.succeeded", object: self.intent(status: "succeeded"))
        let delivery = try self.adapter.verify(self.signed(body), now: self.now)
        #expect(delivery.provider == .stripe)
        #expect(delivery.eventID == "evt_1")
        #expect(delivery.eventType == "payment_intent.succeeded")
        #expect(delivery.orderReference == "ord_1")
        #expect(delivery.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "USD")))
        #expect(delivery.rawBody == Array(body.utf8))
    }

    /// Each payment-intent type maps to its kind; a failure carries `last_payment_error.message`.
    @Test(arguments: [
        ("payment_intent.processing", "", PaymentEvent(kind: .processing)),
        (
            "payment_intent.payment_failed", #","last_payment_error":{"code":"card_declined","message":"Declined"}"#,
            PaymentEvent(kind: .progress, stage: "payment_failed", message: "Declined")
        ),
        (
            "payment_intent.payment_failed", #","last_payment_error":null"#,
            PaymentEvent(kind: .progress, stage: "payment_failed")
        ),
        ("payment_intent.canceled", "", PaymentEvent(kind: .canceled)),
    ])
    func paymentIntentTypes(type: String, extra: String, expected: PaymentEvent) throws {
        let body = self.body(type: type, object: self.intent(status: "x", extra: extra))
        let delivery = try self.adapter.verify(self.signed(body), now: self.now)
        #expect(delivery.event == expected)
        #expect(delivery.orderReference == "ord_1")
    }

    /// A success without `amount_received` reports no paid amount, so the order is never marked paid on it.
    @Test func successWithoutAmount() throws {
        let object = #"{"id":"pi_1","currency":"usd","metadata":{"order_id":"ord_1"}}"#
        let delivery = try self.adapter.verify(
            self.signed(self.body(type: "payment_intent.succeeded", object: object)),
            now: self.now
        )
        #expect(delivery.event == PaymentEvent(kind: .succeeded))
    }

    /// `charge.refunded` is a refund only once the charge is fully refunded; a partial one is ignored.
    @Test func chargeRefunded() throws {
        let full =
            #"{"id":"ch_1","object":"charge","amount":1999,"amount_refunded":1999,"currency":"usd","refunded":true,"#
            + #""payment_intent":"pi_1","metadata":{"order_id":"ord_1"}}"#
        let delivery = try self.adapter.verify(
            self.signed(self.body(type: "charge.refunded", object: full)),
            now: self.now
        )
        #expect(delivery.event == PaymentEvent(kind: .refunded, paid: Money(amount: 1999, currency: "USD")))
        #expect(delivery.orderReference == "ord_1")

        let partial = full.replacingOccurrences(of: #""amount_refunded":1999"#, with: #""amount_refunded":500"#)
            .replacingOccurrences(of: #""refunded":true"#, with: #""refunded":false"#)
        let ignored = try self.adapter.verify(
            self.signed(self.body(type: "charge.refunded", object: partial)),
            now: self.now
        )
        #expect(ignored.event == nil)
        #expect(ignored.eventType == "charge.refunded")
    }

    /// A type the service does not act on is acknowledged without an event, whatever its object holds.
    @Test func unknownTypeIsIgnored() throws {
        let body = self.body(type: "customer.created", object: #"{"id":"cus_1","metadata":{"n":1},"amount":"x"}"#)
        let delivery = try self.adapter.verify(self.signed(body), now: self.now)
        #expect(delivery.event == nil)
        #expect(delivery.orderReference == nil)
        #expect(delivery.eventType == "customer.created")
    }

    /// The old secret still verifies while rolled, and a header with one `v1` per secret verifies too.
    @Test func rotatedSecrets() throws {
        let body = self.body(type: "payment_intent.canceled", object: self.intent(status: "canceled"))
        _ = try self.adapter.verify(self.signed(body, secret: "whsec_old"), now: self.now)
        let unknown = stripeSignature(body, secret: "whsec_unknown", timestamp: 1_790_000_000)
        let old = stripeSignature(body, secret: "whsec_old", timestamp: 1_790_000_000)
        let both = unknown + ",v1=" + old.dropFirst("t=1790000000,v1=".count)
        _ = try self.adapter.verify(self.request(body, signature: both), now: self.now)
    }

    /// A valid HMAC under `v0` never counts: only `v1` is a signature scheme.
    @Test func v0IsIgnored() {
        let body = self.body(type: "payment_intent.canceled", object: self.intent(status: "canceled"))
        let v0 = stripeSignature(body, secret: "whsec_new", timestamp: 1_790_000_000)
            .replacingOccurrences(of: "v1=", with: "v0=")
        #expect(self.rejection(self.request(body, signature: v0))?.reason == .missingSignature)
    }

    /// A body changed after signing, or signed with an unknown secret, is refused as a bad signature (401).
    @Test func tamperedOrWrongKey() {
        let body = self.body(type: "payment_intent.succeeded", object: self.intent(status: "succeeded"))
        let signature = stripeSignature(body, secret: "whsec_new", timestamp: 1_790_000_000)
        let tampered = body.replacingOccurrences(of: "1999", with: "1")
        #expect(self.rejection(self.request(tampered, signature: signature))?.reason == .invalidSignature)
        let wrongKey = self.signed(body, secret: "whsec_attacker")
        #expect(self.rejection(wrongKey)?.reason == .invalidSignature)
        #expect(self.rejection(wrongKey)?.status == 401)
    }

    /// Stale and future timestamps beyond the tolerance are refused, unlike Stripe's SDKs, the ends of
    /// the range too (their age does not fit an `Int`); the edges pass.
    @Test(arguments: [
        (-301, false), (-300, true), (300, true), (301, false), (-86_400, false), (86_400, false),
        (Int.min, false), (Int.max - 1_790_000_000, false),
    ])
    func timestampWindow(offset: Int, accepted: Bool) {
        let body = self.body(type: "payment_intent.canceled", object: self.intent(status: "canceled"))
        let request = self.signed(body, timestamp: 1_790_000_000 + offset)
        if accepted {
            #expect(throws: Never.self) { try self.adapter.verify(request, now: self.now) }
        } else {
            #expect(self.rejection(request)?.reason == .timestampOutOfTolerance)
        }
    }

    /// Missing or malformed `Stripe-Signature` headers are clear refusals, never crashes.
    @Test(arguments: [
        nil, "", "garbage", "t=", "t=abc,v1=00", "v1=abcd", "t=1790000000", "t=1790000000,v1=zz",
        "t=1790000000,v1=" + String(repeating: "0", count: 64), "t=1,t=2,v1=" + String(repeating: "a", count: 64),
        ",,,=,==", "t=99999999999999999999999,v1=00", "t=1790000000,v1=\u{00e9}\u{00e9}",
    ])
    func malformedHeaders(header: String?) {
        let body = self.body(type: "payment_intent.canceled", object: self.intent(status: "canceled"))
        let reason = self.rejection(self.request(body, signature: header))?.reason
        #expect(reason == .missingSignature || reason == .invalidSignature)
    }

    /// Correctly signed bodies that are not Stripe events, or whose modelled fields have the wrong type, are 400s.
    @Test(arguments: [
        "", "not json", "[]", #"{"type":"payment_intent.succeeded"}"#, #"{"id":"","type":"x"}"#,
        #"{"id":"evt_1","type":"payment_intent.succeeded"}"#,
        #"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"amount_received":"ten"}}}"#,
        #"{"id":"evt_1","type":"charge.refunded","data":{"object":{"refunded":"yes"}}}"#,
        #"{"id":"evt_1","type":"payment_intent.canceled","data":{"object":{"metadata":{"order_id":7}}}}"#,
    ])
    func malformedBodies(body: String) {
        let rejection = self.rejection(self.signed(body))
        #expect(rejection?.reason == .malformedPayload)
        #expect(rejection?.status == 400)
    }

    /// The reference signature in the spec notes (self-computed; Stripe publishes none) verifies.
    @Test func referenceSignature() {
        let adapter = StripeAdapter(secrets: ["whsec_test_secret"], tolerance: 300)
        let body = #"{"id":"evt_test_webhook","object":"event"}"#
        let header = "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        // The signature passes; the body, which has no `type`, is then refused as malformed.
        let accepted = #expect(throws: WebhookRejection.self) {
            try adapter.verify(self.request(body, signature: header), now: now)
        }
        #expect(accepted?.reason == .malformedPayload)
        let flipped = #expect(throws: WebhookRejection.self) {
            try adapter.verify(
                self.request(body, signature: header.replacingOccurrences(of: "d95c", with: "d95d")),
                now: now
            )
        }
        #expect(flipped?.reason == .invalidSignature)
    }

    /// Success is 200 `{"received":true}`; refusals use the API's JSON error shape; our trouble is a 503.
    @Test func replies() {
        #expect(self.adapter.acknowledgement.status == 200)
        #expect(self.adapter.acknowledgement.body == Array(#"{"received":true}"#.utf8))
        let refused = self.adapter.failure(WebhookRejection(.invalidSignature, "no signature matches"))
        #expect(refused.status == 401)
        #expect(
            String(decoding: refused.body, as: UTF8.self)
                == #"{"error":{"code":"invalid_signature","message":"no signature matches"}}"#
        )
        #expect(self.adapter.failure(nil).status == 503)
    }
}
