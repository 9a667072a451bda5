import Foundation
import PaymentProviders
import Payments
import ProviderEmulator
import Testing

@Suite("Provider callbacks")
struct CallbackTests {
    private static let providers: [Provider] = [.wechatpay, .alipay, .stripe]

    /// Paying sends the provider's callback, which the service's own adapter verifies as this
    /// order's payment of the amount paid; Stripe's names the real PaymentIntent.
    @Test(arguments: Self.providers)
    func paymentCallbackVerifies(provider: Provider) async throws {
        let receiver = CallbackReceiver()
        try await receiver.serve { webhookPort in
            try await withEmulator(configuration(webhookPort: webhookPort)) { client in
                let paymentID = try await client.openTrade(provider, "ord_cb_\(provider.rawValue)")
                let paid = try await client.control(
                    .post,
                    "trades/\(provider.rawValue)/ord_cb_\(provider.rawValue)/pay"
                )
                #expect(paid.status == 200)
                let received = try await receiver.waitFor(1)
                let callback = try #require(received.first)
                #expect(callback.provider == provider.rawValue)
                let delivery = try adapter(for: provider).verify(callback.request, now: Date())
                #expect(delivery.orderReference == "ord_cb_\(provider.rawValue)")
                #expect(delivery.event?.kind == .succeeded)
                #expect(delivery.event?.paid == Money(amount: 1999, currency: "CNY"))
                if provider == .stripe, let paymentID {
                    #expect(String(decoding: callback.request.body, as: UTF8.self).contains(#""id":"\#(paymentID)""#))
                }
                if provider == .wechatpay {
                    // The callback's transaction is the one the query reports.
                    let query = try await client.wechatQuery("ord_cb_wechatpay")
                    #expect(query.json["transaction_id"] as? String == paid.json["payment_id"] as? String)
                }
            }
        }
    }

    /// A refund sends the provider's refund notification, verified as a refund of the amount paid.
    @Test(arguments: Self.providers)
    func refundCallbackVerifies(provider: Provider) async throws {
        let receiver = CallbackReceiver()
        try await receiver.serve { webhookPort in
            try await withEmulator(configuration(webhookPort: webhookPort)) { client in
                try await client.openTrade(provider, "ord_rf")
                try await client.control(.post, "trades/\(provider.rawValue)/ord_rf/pay", #"{"callback":"drop"}"#)
                #expect(try await client.control(.post, "trades/\(provider.rawValue)/ord_rf/refund").status == 200)
                let callback = try #require(try await receiver.waitFor(1).first)
                let delivery = try adapter(for: provider).verify(callback.request, now: Date())
                #expect(delivery.event?.kind == .refunded)
                #expect(delivery.event?.paid == Money(amount: 1999, currency: "CNY"))
            }
        }
    }

    /// A dropped callback never arrives; a delayed one arrives after its delay; a paid amount
    /// other than the price is what the callback reports.
    @Test func droppedAndDelayedCallbacks() async throws {
        let receiver = CallbackReceiver()
        try await receiver.serve { webhookPort in
            try await withEmulator(configuration(webhookPort: webhookPort)) { client in
                try await client.openTrade(.stripe, "ord_drop")
                try await client.openTrade(.stripe, "ord_delay")
                try await client.control(.post, "trades/stripe/ord_drop/pay", #"{"callback":"drop"}"#)
                let start = Date()
                try await client.control(
                    .post,
                    "trades/stripe/ord_delay/pay",
                    #"{"callback":"delay","delay_ms":400,"amount":1500}"#
                )
                let received = try await receiver.waitFor(1)
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.received.count == 1)
                let callback = try #require(received.first)
                #expect(callback.at.timeIntervalSince(start) >= 0.4)
                let delivery = try adapter(for: .stripe).verify(callback.request, now: Date())
                #expect(delivery.orderReference == "ord_delay")
                #expect(delivery.event?.paid == Money(amount: 1500, currency: "CNY"))
            }
        }
    }

    /// A callback our server does not acknowledge is sent again.
    @Test func unacknowledgedCallbackIsRetried() async throws {
        let receiver = CallbackReceiver(failures: 1)
        try await receiver.serve { webhookPort in
            try await withEmulator(configuration(webhookPort: webhookPort)) { client in
                try await client.openTrade(.alipay, "ord_retry")
                try await client.control(.post, "trades/alipay/ord_retry/pay")
                let received = try await receiver.waitFor(2)
                #expect(received.count == 2)
                for callback in received {
                    #expect(throws: Never.self) { try adapter(for: .alipay).verify(callback.request, now: Date()) }
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.received.count == 2)
            }
        }
    }
}
