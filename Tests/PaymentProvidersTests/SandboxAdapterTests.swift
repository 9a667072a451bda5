import Crypto
import Foundation
import PaymentProviders
import Payments
import Testing

/// Signs like a sandbox sender: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
func sandboxSignature(_ body: String, secret: String, timestamp: Int) -> String {
    let code = HMAC<SHA256>.authenticationCode(
        for: Array("\(timestamp).\(body)".utf8),
        using: SymmetricKey(data: Array(secret.utf8))
    )
    return "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
}

@Suite("SandboxAdapter")
struct SandboxAdapterTests {
    private let now = Date(timeIntervalSince1970: 1_790_000_000)
    private let adapter = SandboxAdapter(secrets: ["new-secret", "old-secret"], tolerance: 300)
    private let body = #"{"id":"evt_1","type":"payment.succeeded","order_id":"ord_1","amount":1999,"currency":"CNY"}"#

    private func request(_ body: String, signature: String?) -> WebhookRequest {
        WebhookRequest(headers: signature.map { ["Sandbox-Signature": $0] } ?? [:], body: Array(body.utf8))
    }

    private func rejection(_ request: WebhookRequest) -> WebhookRejection? {
        #expect(throws: WebhookRejection.self) { try self.adapter.verify(request, now: self.now) }
    }

    /// A correctly signed success maps to the canonical event with the paid amount.
    @Test func validDelivery() throws {
        let delivery = try self.adapter.verify(
            self.request(
                self.body,
                signature: sandboxSignature(self.body, secret: "new-secret", timestamp: 1_790_000_000)
            ),
            now: self.now
        )
        #expect(delivery.provider == .sandbox)
        #expect(delivery.eventID == "evt_1")
        #expect(delivery.orderReference == "ord_1")
        #expect(delivery.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 1999, currency: "CNY")))
        #expect(delivery.rawBody == Array(self.body.utf8))
    }

    /// Spaces and tabs around the header's parts are allowed (HTTP's optional whitespace); other
    /// white space is not whitespace there, and the part it surrounds is not read.
    @Test func optionalWhitespaceAroundParts() throws {
        let signed = sandboxSignature(self.body, secret: "new-secret", timestamp: 1_790_000_000)
        let spaced = signed.replacingOccurrences(of: "t=", with: " \tt = ").replacingOccurrences(
            of: ",v1=",
            with: " , v1=\t"
        )
        _ = try self.adapter.verify(self.request(self.body, signature: spaced + " "), now: self.now)
        let nonBreaking = signed.replacingOccurrences(of: "t=", with: "\u{00A0}t=")
        #expect(self.rejection(self.request(self.body, signature: nonBreaking))?.reason == .missingSignature)
        #expect(self.rejection(self.request(self.body, signature: " \t "))?.reason == .missingSignature)
    }

    /// A secret being rotated out still verifies, and so does a header carrying both signatures.
    @Test func rotatedSecrets() throws {
        let old = sandboxSignature(self.body, secret: "old-secret", timestamp: 1_790_000_000)
        _ = try self.adapter.verify(self.request(self.body, signature: old), now: self.now)
        let wrong = sandboxSignature(self.body, secret: "unknown", timestamp: 1_790_000_000)
        let both = wrong + ",v1=" + old.split(separator: "=").last!
        _ = try self.adapter.verify(self.request(self.body, signature: both), now: self.now)
    }

    /// A body changed after signing, or signed with an unknown key, is refused as a bad signature.
    @Test func tamperedOrWrongKey() {
        let signature = sandboxSignature(self.body, secret: "new-secret", timestamp: 1_790_000_000)
        let tampered = self.body.replacingOccurrences(of: "1999", with: "1")
        #expect(self.rejection(self.request(tampered, signature: signature))?.reason == .invalidSignature)
        let wrongKey = sandboxSignature(self.body, secret: "attacker", timestamp: 1_790_000_000)
        #expect(self.rejection(self.request(self.body, signature: wrongKey))?.reason == .invalidSignature)
        #expect(self.rejection(self.request(self.body, signature: wrongKey))?.status == 401)
    }

    /// Timestamps beyond the tolerance are refused in both directions, the ends of the range too
    /// (their age does not fit an `Int`); the edges are accepted.
    @Test(arguments: [
        (-301, false), (-300, true), (300, true), (301, false), (-86_400, false), (86_400, false),
        (Int.min, false), (Int.max - 1_790_000_000, false),
    ])
    func timestampWindow(offset: Int, accepted: Bool) {
        let signature = sandboxSignature(self.body, secret: "new-secret", timestamp: 1_790_000_000 + offset)
        let request = self.request(self.body, signature: signature)
        if accepted {
            #expect(throws: Never.self) { try self.adapter.verify(request, now: self.now) }
        } else {
            #expect(self.rejection(request)?.reason == .timestampOutOfTolerance)
        }
    }

    /// The refusal says how far out the date was, in whole seconds either way, at the ends of the
    /// range too.
    @Test(arguments: [
        (-301, "signed 301 s ago; the tolerance is 300 s"),
        (400, "signed 400 s in the future; the tolerance is 300 s"),
        (Int.min, "signed 9223372036854775808 s ago; the tolerance is 300 s"),
    ])
    func timestampRefusalMessage(offset: Int, message: String) {
        let signature = sandboxSignature(self.body, secret: "new-secret", timestamp: 1_790_000_000 + offset)
        #expect(self.rejection(self.request(self.body, signature: signature))?.message == message)
    }

    /// Missing or malformed signature headers are clear refusals, never crashes.
    @Test(arguments: [
        nil, "", "garbage", "t=", "t=abc,v1=00", "v1=abcd", "t=1790000000", "t=1790000000,v1=zz",
        "t=1790000000,v1=abcd",
        "t=1,t=2,v1=" + String(repeating: "a", count: 64), ",,,=,==", "t=99999999999999999999999,v1=00",
    ])
    func malformedHeaders(header: String?) {
        let reason = self.rejection(self.request(self.body, signature: header))?.reason
        #expect(reason == .missingSignature || reason == .invalidSignature)
    }

    /// Correctly signed bodies that are not sandbox events are refused as malformed (400).
    @Test(arguments: [
        "", "not json", "[]", #"{"type":"payment.succeeded"}"#, #"{"id":"","type":"payment.succeeded"}"#,
        #"{"id":"e","type":"payment.progress","progress":101}"#, #"{"id":"e","type":"x","amount":"ten"}"#,
    ])
    func malformedBodies(body: String) {
        let rejection = self.rejection(
            self.request(body, signature: sandboxSignature(body, secret: "new-secret", timestamp: 1_790_000_000))
        )
        #expect(rejection?.reason == .malformedPayload)
        #expect(rejection?.status == 400)
    }

    /// An unknown type is acknowledged without an event.
    @Test func unknownTypeIsIgnored() throws {
        let body = #"{"id":"evt_9","type":"payment.disputed","order_id":"ord_1"}"#
        let delivery = try self.adapter.verify(
            self.request(body, signature: sandboxSignature(body, secret: "new-secret", timestamp: 1_790_000_000)),
            now: self.now
        )
        #expect(delivery.event == nil)
        #expect(delivery.eventType == "payment.disputed")
    }
}
