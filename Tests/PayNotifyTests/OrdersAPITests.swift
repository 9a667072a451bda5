import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import TestSupport
import Testing

@Suite("Merchant API")
struct OrdersAPITests {
    /// Creating an order answers 201 with its id, status, amounts, expiry and stream token; GET reads it back.
    @Test func createAndRead() async throws {
        try await withApp { client, _ in
            let order = try await client.createOrder(
                #","merchant_order_id":"shop-1","description":"Tea","metadata":{"cart":[1,2]}"#
            )
            let id = try #require(order["id"] as? String)
            #expect(order["status"] as? String == "pending")
            #expect(order["amount"] as? Int == 1999)
            #expect(order["currency"] as? String == "CNY")
            #expect(order["provider"] as? String == "sandbox")
            #expect(order["merchant_order_id"] as? String == "shop-1")
            #expect((order["metadata"] as? [String: Any])?["cart"] as? [Int] == [1, 2])
            #expect((order["stream_token"] as? String)?.hasPrefix("v1.") == true)
            #expect(
                order["stream_url"] as? String == "/v1/orders/\(id)/events?token=\(order["stream_token"] as! String)"
            )
            #expect(order["expires_at"] is String)
            let read = try await client.merchant(.get, "/v1/orders/\(id)")
            #expect(read.status == .ok)
            #expect(read.json["id"] as? String == id)
            #expect(try await client.merchant(.get, "/v1/orders/ord_doesnotexist").errorCode == "order_not_found")
        }
    }

    /// Without a valid key every merchant endpoint answers 401 JSON, whether or not the order exists.
    @Test func requiresAnAPIKey() async throws {
        try await withApp { client, _ in
            for key in [nil, "wrong-key-0123456789", "", "test-merchant-key-012345678"] {
                let response = try await client.merchant(.post, "/v1/orders", json: #"{"amount":1}"#, key: key)
                #expect(response.status == .unauthorized)
                #expect(response.errorCode == "unauthorized")
                #expect(response.headers[.wwwAuthenticate] != nil)
            }
            #expect(try await client.merchant(.get, "/v1/orders/ord_x", key: nil).status == .unauthorized)
            // The older key of a rotation still works.
            let response = try await client.merchant(.get, "/v1/orders/ord_x", key: "old-merchant-key-0000000000")
            #expect(response.status == .notFound)
        }
    }

    /// Invalid bodies are refused with the right status and a message naming the field; nothing is written.
    @Test(arguments: [
        (#"{"currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":19.99,"currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":"1999","currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":1e300,"currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":1999,"currency":7,"provider":"sandbox"}"#, 400, "currency"),
        (#"{"amount":0,"currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":-5,"currency":"CNY","provider":"sandbox"}"#, 422, "amount"),
        (#"{"amount":1999,"currency":"cny","provider":"sandbox"}"#, 422, "currency"),
        (#"{"amount":1999,"currency":"CNY","provider":"paypal"}"#, 422, "provider"),
        (#"{"amount":1999,"currency":"CNY","provider":"stripe"}"#, 422, "provider"),
        (#"{"amount":1999,"currency":"CNY","provider":"sandbox","expires_in":5}"#, 422, "expires_in"),
        (#"{"amount":1999,"currency":"CNY","provider":"sandbox","metadata":[1]}"#, 422, "metadata"),
        (
            #"{"amount":1999,"currency":"CNY","provider":"sandbox","merchant_order_id":"bad id"}"#, 422,
            "merchant_order_id"
        ),
        // Providers name an order by either id, ours first: a merchant id shaped like ours could
        // take another order's webhooks.
        (
            #"{"amount":1999,"currency":"CNY","provider":"sandbox","merchant_order_id":"ord_0123456789abcdefghjkmnpqrs"}"#,
            422, "ord_"
        ),
        // Reproducers: these reached the database and came back as 500.
        (
            #"{"amount":1999,"currency":"CNY","provider":"sandbox","description":""#
                + String(repeating: "e\u{301}", count: 700) + #""}"#, 422, "description"
        ),
        (#"{"amount":1999,"currency":"CNY","provider":"sandbox","description":"a\u0000b"}"#, 422, "description"),
        (#"{"amount":1999,"currency":"CNY","provider":"sandbox","metadata":{"k":"a\u0000b"}}"#, 422, "metadata"),
        (#"{"amount":1999,"currency":"CNY","provider":"sandbox","metadata":{"a\u0000":1}}"#, 422, "metadata"),
        ("not json", 400, "JSON"),
        ("[]", 400, "body"),
    ])
    func invalidCreates(body: String, status: Int, mentions: String) async throws {
        try await withApp { client, database in
            let response = try await client.merchant(.post, "/v1/orders", json: body)
            #expect(response.status.code == status)
            let message = (response.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains(mentions), "\(message)")
            let orders = try await database.withConnection {
                try $0.query("SELECT count(*) FROM orders").first!.decode(Int.self, at: 0)
            }
            #expect(orders == 0)
        }
    }

    /// A body over the limit is 413; a non-JSON content type is 415.
    @Test func sizeAndContentType() async throws {
        try await withApp(overrides: ["PAYNOTIFY_MAX_BODY_BYTES": "1024"]) { client, _ in
            let large =
                #"{"amount":1999,"currency":"CNY","provider":"sandbox","description":""#
                + String(repeating: "x", count: 2000) + #""}"#
            let tooLarge = try await client.merchant(.post, "/v1/orders", json: large)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.errorCode != nil)
            let form = try await client.merchant(
                .post,
                "/v1/orders",
                headers: [.contentType: "application/x-www-form-urlencoded"]
            )
            #expect(form.status == .unsupportedMediaType)
        }
    }

    /// A retried create with the same Idempotency-Key returns the first order; another body is a 409.
    @Test func idempotencyKey() async throws {
        try await withApp { client, _ in
            let body = #"{"amount":1999,"currency":"CNY","provider":"sandbox"}"#
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "retry-1"]
            let first = try await client.merchant(.post, "/v1/orders", json: body, headers: key)
            let second = try await client.merchant(.post, "/v1/orders", json: body, headers: key)
            #expect(first.status == .created && second.status == .created)
            #expect(first.json["id"] as? String == second.json["id"] as? String)
            #expect(second.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let other = try await client.merchant(
                .post,
                "/v1/orders",
                json: body.replacingOccurrences(of: "1999", with: "2999"),
                headers: key
            )
            #expect(other.status == .conflict)
            #expect(other.errorCode == "idempotency_key_reused")
        }
    }

    /// A reused merchant_order_id with a different body is a 409; with the same body it is the same order.
    @Test func merchantOrderIDReuse() async throws {
        try await withApp { client, _ in
            let first = try await client.createOrder(#","merchant_order_id":"m-7""#)
            let again = try await client.createOrder(#","merchant_order_id":"m-7""#)
            #expect(first["id"] as? String == again["id"] as? String)
            let conflict = try await client.merchant(
                .post,
                "/v1/orders",
                json: #"{"amount":5,"currency":"CNY","provider":"sandbox","merchant_order_id":"m-7"}"#
            )
            #expect(conflict.status == .conflict)
            #expect(conflict.errorCode == "merchant_order_id_reused")
        }
    }

    /// Merchants push progress and their own events; reserved or malformed names are refused.
    @Test func merchantEvents() async throws {
        try await withApp { client, database in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let progress = try await client.merchant(
                .post,
                "/v1/orders/\(id)/events",
                json: #"{"event":"progress","stage":"paying","percent":50}"#
            )
            #expect(progress.status == .created)
            let custom = try await client.merchant(
                .post,
                "/v1/orders/\(id)/events",
                json: #"{"event":"ticket.issued","data":{"seat":"12A"}}"#
            )
            #expect(custom.status == .created)
            for (body, field) in [
                (#"{"event":"status"}"#, "reserved"), (#"{"event":"finish"}"#, "reserved"),
                (#"{"event":"Bad Name"}"#, "[a-z0-9._-]"),
                (#"{"event":"progress","percent":150}"#, "percent"), (#"{"event":"x","data":"text"}"#, "data"),
                ("{}", "required"),
                // Reproducers: a NUL reached the database and came back as 500.
                (#"{"event":"progress","stage":"a\u0000"}"#, "stage"),
                (#"{"event":"x","data":{"k":["\u0000"]}}"#, "data"),
            ] {
                let refused = try await client.merchant(.post, "/v1/orders/\(id)/events", json: body)
                #expect(refused.status == .unprocessableContent, "\(body)")
                #expect(
                    ((refused.json["error"] as? [String: Any])?["message"] as? String)?.contains(field) == true,
                    "\(body)"
                )
            }
            #expect(
                try await client.merchant(.post, "/v1/orders/ord_missing/events", json: #"{"event":"x"}"#).status
                    == .notFound
            )
            let events = try await database.withConnection { connection in
                try connection.query("SELECT event FROM order_events WHERE order_id = $1 ORDER BY id", [id]).map {
                    try $0.decode(String.self, at: 0)
                }
            }
            #expect(events == ["status", "progress", "ticket.issued"])
        }
    }

    /// Reproducer: a merchant event retried after an answer that did not come (or a 503 for a
    /// commit whose outcome the server could not know) was appended twice. With an
    /// Idempotency-Key the retry gets the first event back, also once the order has ended; the same
    /// key with another request, or a key an order was created with, is a 409.
    @Test func merchantEventsWithAnIdempotencyKey() async throws {
        try await withApp { client, database in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "event-retry-1"]
            let body = #"{"event":"progress","stage":"paying","percent":50}"#
            let first = try await client.merchant(.post, "/v1/orders/\(id)/events", json: body, headers: key)
            #expect(first.status == .created)
            let eventID = try #require(first.json["id"] as? Int)
            let openRetry = try await client.merchant(.post, "/v1/orders/\(id)/events", json: body, headers: key)
            #expect(openRetry.status == .created && openRetry.json["id"] as? Int == eventID)
            // Two at once with a new key: one appends, the other waits on the key and gets its event.
            let racing: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "event-race-1"]
            async let racer = client.merchant(.post, "/v1/orders/\(id)/events", json: body, headers: racing)
            async let rival = client.merchant(.post, "/v1/orders/\(id)/events", json: body, headers: racing)
            let (oneAnswer, otherAnswer) = try await (racer, rival)
            #expect(oneAnswer.status == .created && otherAnswer.status == .created)
            #expect(oneAnswer.json["id"] as? Int == otherAnswer.json["id"] as? Int)
            #expect(try await client.merchant(.post, "/v1/orders/\(id)/cancel").status == .ok)
            let retry = try await client.merchant(.post, "/v1/orders/\(id)/events", json: body, headers: key)
            #expect(retry.status == .created && retry.json["id"] as? Int == eventID)
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")

            let other = try await client.merchant(
                .post,
                "/v1/orders/\(id)/events",
                json: #"{"event":"progress","percent":60}"#,
                headers: key
            )
            #expect(other.status == .conflict && other.errorCode == "idempotency_key_reused")
            let createKey: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "create-then-event"]
            let created = try await client.merchant(
                .post,
                "/v1/orders",
                json: #"{"amount":1999,"currency":"CNY","provider":"sandbox"}"#,
                headers: createKey
            )
            #expect(created.status == .created)
            let onCreated = try #require(created.json["id"] as? String)
            let reused = try await client.merchant(
                .post,
                "/v1/orders/\(onCreated)/events",
                json: body,
                headers: createKey
            )
            #expect(reused.status == .conflict && reused.errorCode == "idempotency_key_reused")

            let progress = try await database.withConnection { connection in
                try connection.query(
                    "SELECT count(*) FROM order_events WHERE order_id = $1 AND event = 'progress'",
                    [id]
                ).first!.decode(Int.self, at: 0)
            }
            #expect(progress == 2)  // one for each key
        }
    }

    /// Cancel turns a pending order canceled (repeatable); a final order then refuses events and a paid one refuses cancel.
    @Test func cancel() async throws {
        try await withApp { client, _ in
            let id = try #require(try await client.createOrder()["id"] as? String)
            let canceled = try await client.merchant(.post, "/v1/orders/\(id)/cancel")
            #expect(canceled.status == .ok && canceled.json["status"] as? String == "canceled")
            #expect(try await client.merchant(.post, "/v1/orders/\(id)/cancel").status == .ok)
            let late = try await client.merchant(.post, "/v1/orders/\(id)/events", json: #"{"event":"x"}"#)
            #expect(late.status == .conflict && late.errorCode == "order_finished")

            let paid = try #require(try await client.createOrder()["id"] as? String)
            let body =
                #"{"id":"evt_paid","type":"payment.succeeded","order_id":"\#(paid)","amount":1999,"currency":"CNY"}"#
            #expect(try await client.sandboxWebhook(body).status == .ok)
            let refused = try await client.merchant(.post, "/v1/orders/\(paid)/cancel")
            #expect(refused.status == .conflict && refused.errorCode == "order_not_cancelable")
        }
    }
}
