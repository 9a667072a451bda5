import Foundation
import Payments
import ProviderEmulator
import Testing

@Suite("Control API")
struct ControlAPITests {
    /// Every API call is logged with its provider, operation, order and status; control calls
    /// are not; the log can be filtered by provider and emptied.
    @Test func callsLog() async throws {
        try await withEmulator { client in
            try await client.openTrade(.wechatpay, "ord_c1")
            let id = try #require(try await client.openTrade(.stripe, "ord_c1", currency: "usd"))
            _ = try await client.wechatQuery("ord_c1")
            _ = try await client.wechatQuery("ord_none")
            _ = try await client.wechatClose("ord_c1")
            _ = try await client.stripe(.get, "/v1/payment_intents/\(id)")
            _ = try await client.alipay("alipay.trade.query", orderID: "ord_c1")
            let wechat = try await client.control(.get, "calls?provider=wechatpay")
            let calls = try #require(try JSONSerialization.jsonObject(with: Data(wechat.body)) as? [[String: Any]])
            #expect(calls.map { $0["operation"] as? String } == ["query", "query", "close"])
            #expect(calls.map { $0["order_id"] as? String } == ["ord_c1", "ord_none", "ord_c1"])
            #expect(calls.map { $0["status"] as? Int } == [200, 404, 403])
            #expect(calls.allSatisfy { ($0["at_ms"] as? Int64 ?? 0) > 1_700_000_000_000 })
            let all = try await client.control(.get, "calls")
            let everything = try #require(try JSONSerialization.jsonObject(with: Data(all.body)) as? [[String: Any]])
            #expect(everything.count == 5)
            #expect(
                everything[3]["provider"] as? String == "stripe" && everything[3]["order_id"] as? String == "ord_c1"
            )
            #expect(try await client.control(.delete, "calls").status == 204)
            #expect(try await client.control(.get, "calls").text == "[]")
        }
    }

    /// Opening the same trade again with the same amount answers the existing one; another amount
    /// is 409; a closed trade cannot be paid; an unknown trade is 404.
    @Test func tradeRules() async throws {
        try await withEmulator(configuration(closeMinimumAge: .zero)) { client in
            let first = try await client.control(
                .post,
                "trades",
                #"{"provider":"stripe","order_id":"ord_c2","amount":500,"currency":"eur"}"#
            )
            #expect(first.status == 201)
            #expect(first.json["state"] as? String == "created")
            let repeated = try await client.control(
                .post,
                "trades",
                #"{"provider":"stripe","order_id":"ord_c2","amount":500,"currency":"eur"}"#
            )
            #expect(repeated.status == 200)
            #expect(repeated.json["payment_id"] as? String == first.json["payment_id"] as? String)
            let mismatch = try await client.control(
                .post,
                "trades",
                #"{"provider":"stripe","order_id":"ord_c2","amount":600,"currency":"eur"}"#
            )
            #expect(mismatch.status == 409)
            #expect((mismatch.json["error"] as? [String: Any])?["code"] as? String == "amount_mismatch")

            try await client.openTrade(.wechatpay, "ord_c3")
            #expect(try await client.wechatClose("ord_c3").status == 204)
            let pay = try await client.control(.post, "trades/wechatpay/ord_c3/pay")
            #expect(pay.status == 409)
            #expect((pay.json["error"] as? [String: Any])?["code"] as? String == "trade_closed")
            let shown = try await client.control(.get, "trades/wechatpay/ord_c3")
            #expect(shown.json["state"] as? String == "closed")
            #expect(shown.json["provider_state"] as? String == "CLOSED")
            #expect(try await client.control(.get, "trades/wechatpay/ord_none").status == 404)
            #expect(try await client.control(.post, "trades/sandbox/ord_c3/pay").status == 400)
        }
    }
}
