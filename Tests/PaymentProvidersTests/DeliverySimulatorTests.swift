import Crypto
import Foundation
import PaymentProviders
import Payments
import Signatures
import TestSupport
import Testing
import _CryptoExtras

/// Keys shared by the round trips (RSA generation is slow; one pair per provider is enough).
private let wechatKey = TestRSAKeys.key(0)
private let alipayKey = TestRSAKeys.key(1)

private let simulator: DeliverySimulator = {
    var credentials = DeliverySimulator.Credentials()
    credentials.sandboxSecret = "sandbox-secret"
    credentials.stripeSecret = "whsec_test_secret"
    credentials.wechatPaySerial = "SIMSERIAL"
    credentials.wechatPayPrivateKey = wechatKey
    credentials.wechatPayAPIv3Key = "0123456789abcdef0123456789abcdef"
    credentials.alipayPrivateKey = alipayKey
    credentials.alipayAppID = "2021000000000000"
    return DeliverySimulator(credentials: credentials)
}()

private func adapter(for provider: Provider) throws -> any WebhookAdapter {
    switch provider {
    case .sandbox: SandboxAdapter(secrets: ["sandbox-secret"], tolerance: 300)
    case .stripe: StripeAdapter(secrets: ["whsec_test_secret"], tolerance: 300)
    case .wechatpay:
        WeChatPayAdapter(
            platformKeys: ["SIMSERIAL": wechatKey.publicKey],
            apiV3Key: Array("0123456789abcdef0123456789abcdef".utf8),
            tolerance: 300
        )
    case .alipay: AlipayAdapter(publicKeys: [alipayKey.publicKey], appID: "2021000000000000", tolerance: nil)
    }
}

/// The canonical event each provider's simulated outcome must map to.
private func expected(_ provider: Provider, _ outcome: DeliverySimulator.Outcome) -> PaymentEvent.Kind? {
    switch (provider, outcome) {
    case (.alipay, .processing): .awaitingPayment
    case (.alipay, .failed): .canceled
    // A failed Stripe attempt is progress: the customer may retry (StripeAdapter).
    case (.stripe, .failed): .progress
    case (_, .processing): .processing
    case (_, .progress): .progress
    case (_, .succeeded): .succeeded
    case (_, .failed): .failed
    case (_, .canceled): .canceled
    }
}

@Suite("DeliverySimulator round trips")
struct DeliverySimulatorTests {
    /// Every simulated delivery verifies with the provider's adapter and maps to the intended event.
    @Test(arguments: Provider.allCases)
    func roundTrip(provider: Provider) throws {
        let now = Date()
        let price = Money(amount: 1999, currency: "CNY")
        for outcome in DeliverySimulator.Outcome.allCases {
            guard outcome != .progress || provider == .sandbox else {
                #expect(throws: DeliverySimulator.SimulationError.self) {
                    try simulator.delivery(
                        provider: provider,
                        orderID: "ord_x",
                        outcome: outcome,
                        paid: price,
                        now: now
                    )
                }
                continue
            }
            let request = try simulator.delivery(
                provider: provider,
                orderID: "ord_sim123",
                outcome: outcome,
                paid: price,
                now: now
            )
            let delivery = try adapter(for: provider).verify(request, now: now)
            #expect(delivery.provider == provider)
            #expect(delivery.orderReference == "ord_sim123", "\(provider) \(outcome)")
            #expect(delivery.event?.kind == expected(provider, outcome), "\(provider) \(outcome)")
            if outcome == .succeeded { #expect(delivery.event?.paid == price, "\(provider)") }
        }
    }

    /// A simulated delivery altered in transit is refused by the adapter.
    @Test(arguments: Provider.allCases)
    func alteredDeliveryIsRefused(provider: Provider) throws {
        let now = Date()
        let request = try simulator.delivery(
            provider: provider,
            orderID: "ord_sim123",
            outcome: .succeeded,
            paid: Money(amount: 1999, currency: "CNY"),
            now: now
        )
        var body = request.body
        body[body.count / 2] ^= 0x01
        let altered = WebhookRequest(headers: request.headers, body: body)
        #expect(throws: WebhookRejection.self) { try adapter(for: provider).verify(altered, now: now) }
    }

    /// The sandbox's body is compact JSON with sorted keys and only the fields its outcome has,
    /// and its header is `t=<t>,v1=<lower-case hex HMAC-SHA256 over "<t>.<body>">`.
    @Test func sandboxWireFormat() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let price = Money(amount: 1999, currency: "CNY")
        let bodies: [(DeliverySimulator.Outcome, String)] = [
            (
                .progress,
                #"{"id":"evt_e1","order_id":"ord_x/1","progress":40,"stage":"lg-7","type":"payment.progress"}"#
            ),
            (
                .succeeded,
                #"{"amount":1999,"currency":"CNY","id":"evt_e1","order_id":"ord_x/1","type":"payment.succeeded"}"#
            ),
            (.failed, #"{"id":"evt_e1","order_id":"ord_x/1","type":"payment.failed"}"#),
        ]
        for (outcome, body) in bodies {
            let request = try simulator.delivery(
                provider: .sandbox,
                orderID: "ord_x/1",
                outcome: outcome,
                paid: price,
                now: now,
                eventID: "e1",
                percent: 40,
                stage: "lg-7"
            )
            #expect(String(decoding: request.body, as: UTF8.self) == body)
            let code = HMAC<SHA256>.authenticationCode(
                for: Array("1800000000.\(body)".utf8),
                using: SymmetricKey(data: Array("sandbox-secret".utf8))
            )
            let hex = code.map { String(format: "%02x", $0) }.joined()
            #expect(request.header("Sandbox-Signature") == "t=1800000000,v1=\(hex)")
        }
    }

    /// The hex encoder against Foundation's formatting, for every byte value.
    @Test func hexEncoding() {
        let bytes = (0...255).map(UInt8.init)
        #expect(hexString(bytes) == bytes.map { String(format: "%02x", $0) }.joined())
        #expect(hexString([]) == "")
    }
}

@Suite("DeliverySimulator refunds and provider ids")
struct DeliverySimulatorRefundTests {
    /// A simulated full refund verifies with each provider's adapter as a refund of the amount paid.
    @Test(arguments: Provider.allCases)
    func refundRoundTrip(provider: Provider) throws {
        let now = Date()
        let price = Money(amount: 1999, currency: "CNY")
        let request = try simulator.refundDelivery(provider: provider, orderID: "ord_ref1", refunded: price, now: now)
        let delivery = try adapter(for: provider).verify(request, now: now)
        #expect(delivery.orderReference == "ord_ref1")
        #expect(delivery.event?.kind == .refunded, "\(provider)")
        #expect(delivery.event?.paid == price, "\(provider)")
    }

    /// A given payment id is the one the delivery names: Stripe's PaymentIntent, Alipay's trade_no.
    @Test func givenPaymentIDIsSent() throws {
        let price = Money(amount: 500, currency: "CNY")
        let stripe = try simulator.delivery(
            provider: .stripe,
            orderID: "ord_p",
            outcome: .succeeded,
            paid: price,
            now: Date(),
            paymentID: "pi_given123"
        )
        #expect(String(decoding: stripe.body, as: UTF8.self).contains(#""id":"pi_given123""#))
        let alipay = try simulator.delivery(
            provider: .alipay,
            orderID: "ord_p",
            outcome: .succeeded,
            paid: price,
            now: Date(),
            paymentID: "2026given"
        )
        #expect(String(decoding: alipay.body, as: UTF8.self).contains("trade_no=2026given"))
    }
}
