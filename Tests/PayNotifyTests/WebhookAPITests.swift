import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import TestSupport
import Testing

@Suite("Provider webhooks")
struct WebhookAPITests {
    /// A signed processing then succeeded moves the order; a repeat is acknowledged and changes nothing.
    @Test func sandboxDeliveriesMoveTheOrder() async throws {
        try await withApp { client, database in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let processing = #"{"id":"evt_1","type":"payment.processing","order_id":"\#(id)"}"#
            let succeeded =
                #"{"id":"evt_2","type":"payment.succeeded","order_id":"\#(id)","amount":1999,"currency":"CNY"}"#
            let first = try await client.sandboxWebhook(processing)
            #expect(first.status == .ok)
            #expect(String(buffer: first.body) == #"{"received":true}"#)
            #expect(try await client.merchant(.get, "/v1/orders/\(id)").json["status"] as? String == "processing")
            #expect(try await client.sandboxWebhook(succeeded).status == .ok)
            #expect(try await client.sandboxWebhook(succeeded).status == .ok)
            #expect(try await client.merchant(.get, "/v1/orders/\(id)").json["status"] as? String == "succeeded")
            let events = try await database.withConnection { connection in
                try connection.query("SELECT event FROM order_events WHERE order_id = $1 ORDER BY id", [id]).map {
                    try $0.decode(String.self, at: 0)
                }
            }
            #expect(events == ["status", "status", "status", "finish"])
        }
    }

    /// Forged, stale and malformed deliveries are refused with JSON errors and an alert, and write nothing else.
    @Test func refusals() async throws {
        let now = Date()
        let clock: @Sendable () -> Date = { now }
        try await withApp(now: clock) { client, database in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let body = #"{"id":"evt_f","type":"payment.succeeded","order_id":"\#(id)","amount":1999,"currency":"CNY"}"#
            let forged = try await client.sandboxWebhook(body, secret: "attacker-secret")
            #expect(forged.status == .unauthorized && forged.errorCode == "invalid_signature")
            let stale = try await client.sandboxWebhook(body, timestamp: Int(now.timeIntervalSince1970) - 301)
            #expect(stale.status == .badRequest && stale.errorCode == "timestamp_out_of_tolerance")
            let future = try await client.sandboxWebhook(body, timestamp: Int(now.timeIntervalSince1970) + 301)
            #expect(future.status == .badRequest)
            let unsigned = try await client.execute(
                uri: "/v1/webhooks/sandbox",
                method: .post,
                body: ByteBuffer(string: body)
            )
            #expect(unsigned.status == .unauthorized && unsigned.errorCode == "missing_signature")
            let malformed = try await client.sandboxWebhook("{not json")
            #expect(malformed.status == .badRequest && malformed.errorCode == "malformed_payload")
            #expect(try await client.merchant(.get, "/v1/orders/\(id)").json["status"] as? String == "pending")
            let (inbox, alerts) = try await database.withConnection { connection in
                (
                    try connection.query("SELECT count(*) FROM webhook_inbox").first!.decode(Int.self, at: 0),
                    try connection.query(
                        "SELECT count(*) FROM alerts WHERE kind IN ('bad_signature', 'malformed_webhook')"
                    ).first!
                    .decode(Int.self, at: 0)
                )
            }
            #expect(inbox == 0)
            #expect(alerts >= 2)
        }
    }

    /// Reproducer: signed deliveries the inbox cannot store (an over-long type, a NUL) are refused as
    /// malformed (400) instead of failing in the database and being retried for days.
    @Test(arguments: [
        #"{"id":"evt_l","type":""# + String(repeating: "t", count: 200) + #"","order_id":"ord_x"}"#,
        #"{"id":"evt_n","type":"payment.processing","order_id":"ord\u0000x"}"#,
        #"{"id":"evt_s","type":"payment.progress","order_id":"ord_x","stage":"\u0000"}"#,
        #"{"id":"evt_r","type":"payment.processing","order_id":""# + String(repeating: "r", count: 300) + #""}"#,
    ])
    func unstorableDeliveriesAreMalformed(body: String) async throws {
        try await withApp { client, _ in
            let response = try await client.sandboxWebhook(body)
            #expect(response.status == .badRequest)
            #expect(response.errorCode == "malformed_payload")
        }
    }

    /// Reproducer: a signed success for an existing order, with a NUL in its currency. The amount
    /// does not match, and the alert that names the currency could not be stored, so the whole
    /// delivery failed in the database (503) on every retry. It is refused as malformed instead.
    @Test func nulInTheCurrencyIsMalformed() async throws {
        try await withApp { client, _ in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let response = try await client.sandboxWebhook(
                #"{"id":"evt_c","type":"payment.succeeded","order_id":"\#(id)","amount":1999,"currency":"cny\u0000"}"#
            )
            #expect(response.status == .badRequest)
            #expect(response.errorCode == "malformed_payload")
        }
    }

    /// Unknown and unconfigured providers are 404 JSON.
    @Test func unknownProviders() async throws {
        try await withApp { client, _ in
            for provider in ["paypal", "stripe"] {
                let response = try await client.execute(
                    uri: "/v1/webhooks/\(provider)",
                    method: .post,
                    body: ByteBuffer(string: "{}")
                )
                #expect(response.status == .notFound && response.errorCode == "unknown_provider")
            }
        }
    }

    /// A delivery for an unknown order is acknowledged (so the provider stops) and recorded with an alert.
    @Test func unknownOrderIsAcknowledged() async throws {
        try await withApp { client, database in
            let body = #"{"id":"evt_u","type":"payment.succeeded","order_id":"ord_nobody","amount":1,"currency":"CNY"}"#
            #expect(try await client.sandboxWebhook(body).status == .ok)
            let outcome = try await database.withConnection {
                try $0.query("SELECT outcome FROM webhook_inbox").first!.decode(String.self, at: 0)
            }
            #expect(outcome == "unknown_order")
        }
    }
}
