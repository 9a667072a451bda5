import Foundation
import Payments
import ProviderEmulator
import Testing

@Suite("Stripe emulation")
struct StripeAPITests {
    /// Without the secret key, or with another, the answer is 401 invalid_request_error.
    @Test func authenticationIsRequired() async throws {
        try await withEmulator { client in
            let id = try #require(try await client.openTrade(.stripe, "ord_st1", currency: "usd"))
            for key in [nil, "sk_test_other"] {
                let answer = try await client.stripe(.get, "/v1/payment_intents/\(id)", key: key)
                #expect(answer.status == 401)
                #expect((answer.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
            }
            let basic = try await client.send(
                .get,
                "/v1/payment_intents/\(id)",
                headers: [("Authorization", "Basic " + Data("\(Keys.stripeKey):".utf8).base64EncodedString())]
            )
            #expect(basic.status == 200)
        }
    }

    /// Retrieve shows the intent with its order id; an unknown id is 404 resource_missing.
    @Test func retrieve() async throws {
        try await withEmulator { client in
            let id = try #require(try await client.openTrade(.stripe, "ord_st2", amount: 1200, currency: "USD"))
            #expect(id.hasPrefix("pi_"))
            let answer = try await client.stripe(.get, "/v1/payment_intents/\(id)")
            #expect(answer.status == 200)
            #expect(answer.json["id"] as? String == id)
            #expect(answer.json["object"] as? String == "payment_intent")
            #expect(answer.json["status"] as? String == "requires_payment_method")
            #expect(answer.json["currency"] as? String == "usd")
            #expect(answer.json["amount"] as? Int == 1200)
            #expect(answer.json["amount_received"] as? Int == 0)
            #expect((answer.json["metadata"] as? [String: String])?["order_id"] == "ord_st2")
            try await client.control(.post, "trades/stripe/ord_st2/pay", #"{"callback":"drop"}"#)
            let paid = try await client.stripe(.get, "/v1/payment_intents/\(id)")
            #expect(paid.json["status"] as? String == "succeeded")
            #expect(paid.json["amount_received"] as? Int == 1200)
            let missing = try await client.stripe(.get, "/v1/payment_intents/pi_missing")
            #expect(missing.status == 404)
            #expect((missing.json["error"] as? [String: Any])?["code"] as? String == "resource_missing")
        }
    }

    /// A repeated Idempotency-Key gets the saved answer; the key with other parameters is refused.
    @Test func idempotency() async throws {
        try await withEmulator { client in
            let id = try #require(try await client.openTrade(.stripe, "ord_st3", currency: "usd"))
            let path = "/v1/payment_intents/\(id)/cancel"
            let first = try await client.stripe(
                .post,
                path,
                idempotencyKey: "k1",
                form: "cancellation_reason=abandoned"
            )
            #expect(first.status == 200)
            #expect(first.json["status"] as? String == "canceled")
            #expect(first.json["cancellation_reason"] as? String == "abandoned")
            let repeated = try await client.stripe(
                .post,
                path,
                idempotencyKey: "k1",
                form: "cancellation_reason=abandoned"
            )
            #expect(repeated.status == 200)
            #expect(repeated.body == first.body)
            #expect(repeated.header("Idempotent-Replayed") == "true")
            let other = try await client.stripe(
                .post,
                path,
                idempotencyKey: "k1",
                form: "cancellation_reason=duplicate"
            )
            #expect(other.status == 400)
            #expect((other.json["error"] as? [String: Any])?["type"] as? String == "idempotency_error")
            // Without the key, a second cancel meets the canceled state.
            let again = try await client.stripe(.post, path)
            #expect(again.status == 400)
        }
    }

    /// Cancelling a succeeded intent is 400 payment_intent_unexpected_state.
    @Test func cancelOnSucceeded() async throws {
        try await withEmulator { client in
            let id = try #require(try await client.openTrade(.stripe, "ord_st4", currency: "usd"))
            try await client.control(.post, "trades/stripe/ord_st4/pay", #"{"callback":"drop"}"#)
            let answer = try await client.stripe(.post, "/v1/payment_intents/\(id)/cancel")
            #expect(answer.status == 400)
            let error = answer.json["error"] as? [String: Any]
            #expect(error?["code"] as? String == "payment_intent_unexpected_state")
            #expect((error?["payment_intent"] as? [String: Any])?["status"] as? String == "succeeded")
        }
    }
}
