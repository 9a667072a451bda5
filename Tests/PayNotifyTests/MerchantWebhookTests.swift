import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MerchantWebhooks
import NIOCore
import PayNotify
import Postgres
import TestSupport
import Testing

@Suite("Merchant webhook endpoints and the outbox")
struct MerchantWebhookEndpointTests {
    /// A public address needs no name lookup (the tests have no DNS); nothing is delivered there
    /// within a test.
    static let publicURL = "https://93.184.216.34/hook"

    @Test func endpointLifecycle() async throws {
        try await withApp { client, _ in
            let created = try await client.merchant(
                .post,
                "/v1/webhook-endpoints",
                json: #"{"url":"\#(Self.publicURL)","description":"orders"}"#
            )
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["secret"] as? String)
            #expect(WebhookSecret(secret) != nil)
            #expect(created.json["events"] as? [String] == ["*"])
            #expect(created.json["enabled"] as? Bool == true)

            let listed = try await client.merchant(.get, "/v1/webhook-endpoints")
            let data = try #require(listed.json["data"] as? [[String: Any]])
            #expect(data.map { $0["id"] as? String } == [id])
            #expect(data[0]["secret"] == nil, "a secret is shown only when made")
            #expect(try await client.merchant(.get, "/v1/webhook-endpoints/\(id)").json["secret"] == nil)

            let patched = try await client.merchant(
                .patch,
                "/v1/webhook-endpoints/\(id)",
                json: #"{"description":null,"events":["order.succeeded","shipped"],"enabled":false}"#
            )
            #expect(patched.status == .ok)
            #expect(patched.json["description"] is NSNull)
            #expect(patched.json["events"] as? [String] == ["order.succeeded", "shipped"])
            #expect(patched.json["enabled"] as? Bool == false)

            let rotated = try await client.merchant(
                .post,
                "/v1/webhook-endpoints/\(id)/rotate-secret",
                json: #"{"expire_previous_in":3600}"#
            )
            #expect(rotated.status == .ok)
            let newSecret = try #require(rotated.json["secret"] as? String)
            #expect(newSecret != secret && WebhookSecret(newSecret) != nil)
            #expect(rotated.json["previous_secret_expires_at"] is String)

            #expect(try await client.merchant(.delete, "/v1/webhook-endpoints/\(id)").status == .noContent)
            let gone = try await client.merchant(.get, "/v1/webhook-endpoints/\(id)")
            #expect(gone.status == .notFound && gone.errorCode == "not_found")
            #expect(try await client.merchant(.delete, "/v1/webhook-endpoints/\(id)").status == .notFound)
        }
    }

    /// Bad bodies, URLs, event filters and ids are clear 4xx answers, never a 500, and nothing is made.
    @Test func badRequestsAreRefused() async throws {
        try await withApp { client, _ in
            let refused: [(String, String)] = [
                (#"{}"#, "url"),
                (#"{"url":"http://93.184.216.34/hook"}"#, "https"),
                (#"{"url":"ftp://93.184.216.34/hook"}"#, "https"),
                (#"{"url":"not a url"}"#, "url"),
                (#"{"url":"https://user:pass@93.184.216.34/hook"}"#, "credentials"),
                (#"{"url":"https://10.0.0.1/hook"}"#, "private"),
                (#"{"url":"https://169.254.169.254/latest/meta-data"}"#, "link-local"),
                (#"{"url":"https://127.0.0.1/hook"}"#, "loopback"),
                (#"{"url":"https://[::1]/hook"}"#, "loopback"),
                (#"{"url":"https://[::ffff:10.0.0.1]/hook"}"#, "private"),
                (#"{"url":"\#(Self.publicURL)","events":[]}"#, "events"),
                (#"{"url":"\#(Self.publicURL)","events":["order.bogus"]}"#, "events"),
                (#"{"url":"\#(Self.publicURL)","events":["Bad Name"]}"#, "events"),
                (
                    #"{"url":"\#(Self.publicURL)","description":"\#(String(repeating: "x", count: 501))"}"#,
                    "description"
                ),
            ]
            for (body, words) in refused {
                let response = try await client.merchant(.post, "/v1/webhook-endpoints", json: body)
                #expect(response.status == .unprocessableContent, "\(body)")
                let message = ((response.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                #expect(message.contains(words), "\(body): \(message)")
            }
            let malformed = try await client.merchant(.post, "/v1/webhook-endpoints", json: #"{"url":"#)
            #expect(malformed.status == .badRequest)
            #expect((try await client.merchant(.get, "/v1/webhook-endpoints").json["data"] as? [Any])?.isEmpty == true)

            let unknownField = try await client.merchant(.patch, "/v1/webhook-endpoints/we_x", json: #"{"secret":"x"}"#)
            #expect(unknownField.status == .unprocessableContent)
            let missing = try await client.merchant(.patch, "/v1/webhook-endpoints/we_x", json: #"{"enabled":true}"#)
            #expect(missing.status == .notFound)
            let rotateMissing = try await client.merchant(.post, "/v1/webhook-endpoints/we_x/rotate-secret")
            #expect(rotateMissing.status == .notFound)
            let unauthorized = try await client.merchant(.get, "/v1/webhook-endpoints", key: nil)
            #expect(unauthorized.status == .unauthorized)
        }
    }

    /// The messages are written with the events, one per matching enabled endpoint: not for an
    /// order's creation, not for `finish`, not for a repeated delivery.
    @Test func messagesAreWrittenWithTheirEvents() async throws {
        try await withApp { client, database in
            func endpoint(_ json: String) async throws -> String {
                let response = try await client.merchant(.post, "/v1/webhook-endpoints", json: json)
                return try #require(response.json["id"] as? String)
            }
            let all = try await endpoint(#"{"url":"\#(Self.publicURL)"}"#)
            let succeededOnly = try await endpoint(#"{"url":"\#(Self.publicURL)","events":["order.succeeded"]}"#)
            let disabled = try await endpoint(#"{"url":"\#(Self.publicURL)"}"#)
            let disabling = try await client.merchant(
                .patch,
                "/v1/webhook-endpoints/\(disabled)",
                json: #"{"enabled":false}"#
            )
            #expect(disabling.status == .ok && disabling.json["events"] as? [String] == ["*"])

            let order = try await client.createOrder()
            let id = try #require(order["id"] as? String)
            let processing = #"{"id":"evt_1","type":"payment.processing","order_id":"\#(id)"}"#
            let succeeded =
                #"{"id":"evt_2","type":"payment.succeeded","order_id":"\#(id)","amount":1999,"currency":"CNY"}"#
            #expect(try await client.sandboxWebhook(processing).status == .ok)
            #expect(try await client.sandboxWebhook(succeeded).status == .ok)
            #expect(try await client.sandboxWebhook(succeeded).status == .ok)  // a repeat

            let rows = try await database.withConnection { connection in
                try connection.query(
                    "SELECT endpoint_id, type, payload, event_id FROM webhook_messages ORDER BY endpoint_id, event_id"
                ).map {
                    (
                        try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1),
                        try $0.decode(String.self, at: 2), try $0.decode(Int64.self, at: 3)
                    )
                }
            }
            #expect(rows.filter { $0.0 == all }.map(\.1) == ["order.processing", "order.succeeded"])
            #expect(rows.filter { $0.0 == succeededOnly }.map(\.1) == ["order.succeeded"])
            #expect(!rows.contains { $0.0 == disabled })

            let last = try #require(rows.last { $0.0 == all })
            let payload = try #require(
                try JSONSerialization.jsonObject(with: Data(last.2.utf8)) as? [String: Any]
            )
            #expect(payload["type"] as? String == "order.succeeded")
            #expect((payload["timestamp"] as? String)?.hasSuffix("Z") == true)
            let data = try #require(payload["data"] as? [String: Any])
            let shown = try await client.merchant(.get, "/v1/orders/\(id)").json
            for field in ["id", "status", "amount", "currency", "provider", "merchant_order_id", "description"] {
                #expect("\(data[field] ?? "absent")" == "\(shown[field] ?? "absent")", "\(field)")
            }
            #expect(data["status"] as? String == "succeeded")
            #expect((data["event_id"] as? NSNumber)?.int64Value == last.3)
            #expect((data["sequence"] as? NSNumber)?.int64Value == last.3)
            #expect(data["stream_token"] == nil, "the checkout page's capability is not the backend's")
        }
    }
}
