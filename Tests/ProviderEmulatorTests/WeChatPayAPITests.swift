import Foundation
import PaymentProviders
import Payments
import ProviderEmulator
import Testing
import _CryptoExtras

@Suite("WeChat Pay v3 emulation")
struct WeChatPayAPITests {
    /// A request signed with the merchant key is answered 200 with a transaction signed by the platform key.
    @Test func signedQueryIsAnsweredSigned() async throws {
        try await withEmulator { client in
            try await client.openTrade(.wechatpay, "ord_wx1")
            let answer = try await client.wechatQuery("ord_wx1")
            #expect(answer.status == 200)
            #expect(wechatPaySignatureVerifies(answer))
            #expect(answer.header("Request-ID") != nil)
            #expect(answer.json["out_trade_no"] as? String == "ord_wx1")
            #expect(answer.json["mchid"] as? String == Keys.merchantID)
            #expect(answer.json["trade_type"] as? String == "NATIVE")
            #expect((answer.json["amount"] as? [String: Any])?["total"] as? Int == 1999)
        }
    }

    /// A wrong key, a stale timestamp or another mchid is refused with 401 SIGN_ERROR.
    @Test func badRequestSignaturesAreRefused() async throws {
        try await withEmulator { client in
            try await client.openTrade(.wechatpay, "ord_wx2")
            let target = "/v3/pay/transactions/out-trade-no/ord_wx2?mchid=\(Keys.merchantID)"
            for answer in [
                try await client.wechatPay(.get, target, key: Keys.platform),
                try await client.wechatPay(.get, target, skew: -301),
                try await client.wechatPay(.get, target, merchantID: "1900000001"),
                try await client.send(.get, target),
            ] {
                #expect(answer.status == 401)
                #expect(answer.json["code"] as? String == "SIGN_ERROR")
            }
            // The same call, signed right, is answered.
            let query = try await client.wechatPay(.get, target)
            #expect(query.status == 200)
        }
    }

    /// The query reports NOTPAY, USERPAYING, SUCCESS (with transaction_id and success_time), REFUND,
    /// CLOSED; an unknown order is 404 ORDER_NOT_EXIST.
    @Test func queryFollowsTheTradesLife() async throws {
        let clock = TestClock()
        try await withEmulator(clock: clock) { client in
            try await client.openTrade(.wechatpay, "ord_wx3")
            func state() async throws -> [String: Any] {
                let answer = try await client.wechatQuery("ord_wx3")
                #expect(answer.status == 200 && wechatPaySignatureVerifies(answer))
                return answer.json
            }
            #expect(try await state()["trade_state"] as? String == "NOTPAY")
            #expect(try await state()["transaction_id"] == nil)
            try await client.control(.post, "trades/wechatpay/ord_wx3/scan")
            #expect(try await state()["trade_state"] as? String == "USERPAYING")
            try await client.control(.post, "trades/wechatpay/ord_wx3/pay", #"{"callback":"drop"}"#)
            let paid = try await state()
            #expect(paid["trade_state"] as? String == "SUCCESS")
            #expect((paid["transaction_id"] as? String)?.count == 28)
            #expect((paid["success_time"] as? String)?.hasSuffix("+08:00") == true)
            #expect((paid["amount"] as? [String: Any])?["payer_total"] as? Int == 1999)
            try await client.control(.post, "trades/wechatpay/ord_wx3/refund", #"{"callback":"drop"}"#)
            #expect(try await state()["trade_state"] as? String == "REFUND")

            try await client.openTrade(.wechatpay, "ord_wx3b")
            clock.advance(301)
            #expect(try await client.wechatClose("ord_wx3b").status == 204)
            #expect(try await client.wechatQuery("ord_wx3b").json["trade_state"] as? String == "CLOSED")

            let unknown = try await client.wechatQuery("ord_none")
            #expect(unknown.status == 404)
            #expect(unknown.json["code"] as? String == "ORDER_NOT_EXIST")
        }
    }

    /// Close: 403 RULE_LIMIT within 5 minutes of creation, then a signed 204, then 400 ORDER_CLOSED;
    /// a paid order is 400 ORDERPAID and an unknown one 404.
    @Test func closeRules() async throws {
        let clock = TestClock()
        try await withEmulator(clock: clock) { client in
            try await client.openTrade(.wechatpay, "ord_wx4")
            try await client.openTrade(.wechatpay, "ord_wx4paid")
            let early = try await client.wechatClose("ord_wx4")
            #expect(early.status == 403)
            #expect(early.json["code"] as? String == "RULE_LIMIT")
            clock.advance(300)
            let closed = try await client.wechatClose("ord_wx4")
            #expect(closed.status == 204)
            #expect(closed.body.isEmpty)
            #expect(wechatPaySignatureVerifies(closed))
            let again = try await client.wechatClose("ord_wx4")
            #expect(again.status == 400)
            #expect(again.json["code"] as? String == "ORDER_CLOSED")
            try await client.control(.post, "trades/wechatpay/ord_wx4paid/pay", #"{"callback":"drop"}"#)
            let paid = try await client.wechatClose("ord_wx4paid")
            #expect(paid.status == 400)
            #expect(paid.json["code"] as? String == "ORDERPAID")
            #expect(try await client.wechatClose("ord_none").status == 404)
            // A close body for another merchant is refused.
            let other = try await client.wechatPay(
                .post,
                "/v3/pay/transactions/out-trade-no/ord_wx4/close",
                body: #"{"mchid":"1900000001"}"#
            )
            #expect(other.status == 400)
        }
    }

    /// A shortened minimum age lets a close through at once.
    @Test func closeMinimumAgeIsConfigurable() async throws {
        try await withEmulator(configuration(closeMinimumAge: .zero)) { client in
            try await client.openTrade(.wechatpay, "ord_wx5")
            #expect(try await client.wechatClose("ord_wx5").status == 204)
        }
    }
}
