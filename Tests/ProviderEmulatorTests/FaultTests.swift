import Foundation
import PaymentProviders
import Payments
import ProviderEmulator
import Testing

@Suite("Planned faults")
struct FaultTests {
    /// error_5xx answers 500 SYSTEM_ERROR for the planned number of calls, then the real answer.
    @Test func serverErrorForCountCalls() async throws {
        try await withEmulator { client in
            try await client.openTrade(.wechatpay, "ord_f1")
            let plan = try await client.control(
                .post,
                "faults",
                #"{"provider":"wechatpay","fault":"error_5xx","count":2}"#
            )
            #expect(plan.status == 201)
            for _ in 0..<2 {
                let answer = try await client.wechatQuery("ord_f1")
                #expect(answer.status == 500)
                #expect(answer.json["code"] as? String == "SYSTEM_ERROR")
            }
            #expect(try await client.wechatQuery("ord_f1").status == 200)
        }
    }

    /// rate_limit answers 429 with Retry-After, in each provider's shape.
    @Test func rateLimit() async throws {
        try await withEmulator { client in
            let id = try #require(try await client.openTrade(.stripe, "ord_f2", currency: "usd"))
            for provider in ["wechatpay", "alipay", "stripe"] {
                try await client.control(
                    .post,
                    "faults",
                    #"{"provider":"\#(provider)","fault":"rate_limit","retry_after_seconds":7}"#
                )
            }
            let wechat = try await client.wechatQuery("ord_f2")
            #expect(wechat.status == 429)
            #expect(wechat.header("Retry-After") == "7")
            #expect(wechat.json["code"] as? String == "RATELIMIT_EXCEEDED")
            let alipay = try await client.alipay("alipay.trade.query", orderID: "ord_f2")
            #expect(alipay.status == 429)
            #expect(alipay.header("Retry-After") == "7")
            let stripe = try await client.stripe(.get, "/v1/payment_intents/\(id)")
            #expect(stripe.status == 429)
            #expect(stripe.header("Retry-After") == "7")
        }
    }

    /// timeout holds the real answer for the configured hang.
    @Test func timeout() async throws {
        try await withEmulator(configuration(hang: .milliseconds(400))) { client in
            try await client.openTrade(.wechatpay, "ord_f3")
            try await client.control(.post, "faults", #"{"provider":"wechatpay","fault":"timeout"}"#)
            let start = ContinuousClock.now
            let answer = try await client.wechatQuery("ord_f3")
            #expect(ContinuousClock.now - start >= .milliseconds(400))
            #expect(answer.status == 200)
            #expect(wechatPaySignatureVerifies(answer))
        }
    }

    /// bad_signature sends a well-formed signature that does not verify; unsigned sends none.
    @Test func signatureFaults() async throws {
        try await withEmulator { client in
            try await client.openTrade(.wechatpay, "ord_f4")
            try await client.openTrade(.alipay, "ord_f4")
            try await client.control(.post, "trades/alipay/ord_f4/scan")
            for provider in ["wechatpay", "alipay"] {
                try await client.control(.post, "faults", #"{"provider":"\#(provider)","fault":"bad_signature"}"#)
                try await client.control(.post, "faults", #"{"provider":"\#(provider)","fault":"unsigned"}"#)
            }
            let wrong = try await client.wechatQuery("ord_f4")
            #expect(wrong.status == 200)
            #expect(Data(base64Encoded: wrong.header("Wechatpay-Signature") ?? "")?.count == 256)
            #expect(!wechatPaySignatureVerifies(wrong))
            let unsigned = try await client.wechatQuery("ord_f4")
            #expect(unsigned.status == 200)
            #expect(unsigned.header("Wechatpay-Signature") == nil)

            let alipayWrong = try await client.alipay("alipay.trade.query", orderID: "ord_f4")
            #expect(alipayWrong.json["sign"] is String)
            #expect(!alipayResponse(alipayWrong, method: "alipay.trade.query").verified)
            let alipayUnsigned = try await client.alipay("alipay.trade.query", orderID: "ord_f4")
            #expect(alipayUnsigned.json["sign"] == nil)
            #expect(alipayResponse(alipayUnsigned, method: "alipay.trade.query").object["code"] as? String == "10000")

            // The plans are used up: answers verify again.
            #expect(wechatPaySignatureVerifies(try await client.wechatQuery("ord_f4")))
            // Stripe's answers carry no signature to spoil.
            let refused = try await client.control(.post, "faults", #"{"provider":"stripe","fault":"unsigned"}"#)
            #expect(refused.status == 400)
            #expect((refused.json["error"] as? [String: Any])?["code"] as? String == "unsupported_fault")
        }
    }
}
