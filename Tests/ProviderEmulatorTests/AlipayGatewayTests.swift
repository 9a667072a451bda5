import Foundation
import PaymentProviders
import Payments
import ProviderEmulator
import Testing

@Suite("Alipay gateway emulation")
struct AlipayGatewayTests {
    /// A signed query is answered with a response object signed by Alipay over its exact text; an
    /// unscanned trade does not exist, a scanned one waits, then succeeds, then closes on refund.
    @Test func queryFollowsTheTradesLife() async throws {
        try await withEmulator { client in
            try await client.openTrade(.alipay, "ord_ali1")
            func query() async throws -> [String: Any] {
                let answer = try await client.alipay("alipay.trade.query", orderID: "ord_ali1")
                #expect(answer.status == 200)
                let (object, verified) = alipayResponse(answer, method: "alipay.trade.query")
                #expect(verified)
                return object
            }
            let unscanned = try await query()
            #expect(unscanned["code"] as? String == "40004")
            #expect(unscanned["sub_code"] as? String == "ACQ.TRADE_NOT_EXIST")
            try await client.control(.post, "trades/alipay/ord_ali1/scan")
            let waiting = try await query()
            #expect(waiting["code"] as? String == "10000")
            #expect(waiting["trade_status"] as? String == "WAIT_BUYER_PAY")
            #expect(waiting["out_trade_no"] as? String == "ord_ali1")
            try await client.control(.post, "trades/alipay/ord_ali1/pay", #"{"callback":"drop"}"#)
            let paid = try await query()
            #expect(paid["trade_status"] as? String == "TRADE_SUCCESS")
            #expect(paid["total_amount"] as? String == "19.99")
            #expect(paid["buyer_pay_amount"] as? String == "19.99")
            #expect(paid["send_pay_date"] is String)
            try await client.control(.post, "trades/alipay/ord_ali1/refund", #"{"callback":"drop"}"#)
            #expect(try await query()["trade_status"] as? String == "TRADE_CLOSED")
        }
    }

    /// A request signed with another key gets an unsigned error_response 40002 isv.invalid-signature.
    @Test func badRequestSignatureIsRefused() async throws {
        try await withEmulator { client in
            let answer = try await client.alipay("alipay.trade.query", orderID: "ord_ali2", key: Keys.alipay)
            let error = answer.json["error_response"] as? [String: Any]
            #expect(error?["code"] as? String == "40002")
            #expect(error?["sub_code"] as? String == "isv.invalid-signature")
            #expect(answer.json["sign"] == nil)
        }
    }

    /// Close: an unscanned trade does not exist; a scanned one closes (10000); a paid one is
    /// ACQ.TRADE_STATUS_ERROR.
    @Test func closeRules() async throws {
        try await withEmulator { client in
            try await client.openTrade(.alipay, "ord_ali3")
            try await client.openTrade(.alipay, "ord_ali3paid")
            func close(_ orderID: String) async throws -> [String: Any] {
                let answer = try await client.alipay("alipay.trade.close", orderID: orderID)
                let (object, verified) = alipayResponse(answer, method: "alipay.trade.close")
                #expect(verified)
                return object
            }
            #expect(try await close("ord_ali3")["sub_code"] as? String == "ACQ.TRADE_NOT_EXIST")
            try await client.control(.post, "trades/alipay/ord_ali3/scan")
            let closed = try await close("ord_ali3")
            #expect(closed["code"] as? String == "10000")
            #expect(closed["out_trade_no"] as? String == "ord_ali3")
            #expect(closed["trade_no"] is String)
            let query = try await client.alipay("alipay.trade.query", orderID: "ord_ali3")
            #expect(
                alipayResponse(query, method: "alipay.trade.query").object["trade_status"] as? String == "TRADE_CLOSED"
            )
            try await client.control(.post, "trades/alipay/ord_ali3paid/pay", #"{"callback":"drop"}"#)
            let paid = try await close("ord_ali3paid")
            #expect(paid["code"] as? String == "40004")
            #expect(paid["sub_code"] as? String == "ACQ.TRADE_STATUS_ERROR")
        }
    }
}
