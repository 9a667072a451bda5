import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MerchantWebhooks
import NIOCore
import NIOHTTP1
import PayNotify
import PayNotifyClient
import Postgres
import TestSupport
import Testing

@Suite("Merchant webhook delivery to a local receiver")
struct MerchantWebhookDeliveryTests {
    static let overrides = [
        "PAYNOTIFY_ALLOW_HTTP_WEBHOOKS": "true",
        "PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8,::1",
        "PAYNOTIFY_WEBHOOK_RETRY_SCHEDULE": "0s,200ms,200ms",
    ]

    /// Each committed event reaches the backend, signed, with the same id on its retry; the
    /// signatures verify with our signer and with the reference Python library.
    @Test func deliveredSignedAndRetried() async throws {
        let receiver = WebhookReceiver(answers: ["hook": [503, 200]])
        try await receiver.serve { port in
            try await withLiveApp(overrides: Self.overrides) { client, database in
                let endpoint = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/hook")
                let order = try await client.createOrder()
                #expect(try await client.sandbox("processing", order: order.id).status == 200)
                #expect(try await client.sandbox("succeeded", order: order.id).status == 200)
                try await eventually(within: .seconds(15), "both messages delivered") {
                    await receiver.received.filter { $0.status == 200 }.count >= 2
                }

                let received = await receiver.received
                #expect(received.count == 3, "one 503, then each message once")
                let delivered = received.filter { $0.status == 200 }
                let types = try delivered.map { delivery -> String in
                    let json = try JSONSerialization.jsonObject(with: Data(delivery.body.utf8)) as? [String: Any]
                    return json?["type"] as? String ?? "?"
                }
                #expect(Set(types) == ["order.processing", "order.succeeded"])
                // The refused attempt's message came again with the same id.
                #expect(delivered.contains { $0.headers["webhook-id"] == received[0].headers["webhook-id"] })

                let secret = try #require(WebhookSecret(endpoint.secret))
                let now = Int64(Date().timeIntervalSince1970)
                for delivery in received {
                    #expect(delivery.headers["content-type"] == "application/json")
                    #expect(delivery.headers["user-agent"]?.hasPrefix("PayNotify/") == true)
                    let id = try #require(delivery.headers["webhook-id"])
                    let timestamp = try #require(delivery.headers["webhook-timestamp"].flatMap { Int64($0) })
                    #expect(id.hasPrefix("msg_") && abs(now - timestamp) < 60)
                    let expected = MessageSignature.header(
                        id: id,
                        timestamp: timestamp,
                        body: Array(delivery.body.utf8),
                        secrets: [secret]
                    )
                    #expect(delivery.headers["webhook-signature"] == expected)
                }
                #expect(try Self.referenceLibraryAccepts(received, secret: endpoint.secret))
                // The same library refuses a body changed by one byte: the check can fail.
                let tampered = received.map {
                    WebhookReceiver.Received(path: $0.path, headers: $0.headers, body: $0.body + " ", status: $0.status)
                }
                #expect(try !Self.referenceLibraryAccepts(tampered, secret: endpoint.secret))

                let (messages, attempts) = try await database.withConnection { connection in
                    (
                        try connection.query("SELECT status, attempts FROM webhook_messages ORDER BY event_id").map {
                            "\(try $0.decode(String.self, at: 0)):\(try $0.decode(Int64.self, at: 1))"
                        },
                        try connection.query("SELECT count(*) FROM webhook_attempts").first!.decode(Int64.self, at: 0)
                    )
                }
                #expect(Set(messages).isSubset(of: ["delivered:1", "delivered:2"]) && messages.count == 2)
                #expect(attempts == 3)
            }
        }
    }

    /// `410 Gone` disables the endpoint at once; an endpoint that fails every attempt exhausts the
    /// message. Both raise alerts; the endpoint shows why.
    @Test func goneDisablesAndFailuresExhaust() async throws {
        let receiver = WebhookReceiver(answers: ["gone": [410], "broken": [500, 500, 500, 200]])
        try await receiver.serve { port in
            try await withLiveApp(overrides: Self.overrides) { client, database in
                let gone = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/gone")
                let broken = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/broken")
                let order = try await client.createOrder()
                #expect(try await client.sandbox("processing", order: order.id).status == 200)
                try await eventually(within: .seconds(15), "the endpoint disabled and the message exhausted") {
                    try await database.withConnection { connection in
                        try connection.query(
                            "SELECT count(*) FROM alerts WHERE kind IN ('webhook_endpoint_disabled', 'webhook_message_exhausted')"
                        ).first!.decode(Int64.self, at: 0) == 2
                    }
                }
                let received = await receiver.received
                #expect(received.filter { $0.path == "gone" }.count == 1)
                #expect(received.filter { $0.path == "broken" }.count == 3, "the schedule's three attempts")
                let shown = try await client.send(
                    method: .GET,
                    path: "/v1/webhook-endpoints/\(gone.id)",
                    headers: [("Authorization", "Bearer \(TestSecrets.apiKey)")]
                )
                let json = try JSONSerialization.jsonObject(with: Data(shown.body)) as? [String: Any]
                #expect(json?["enabled"] as? Bool == false)
                #expect((json?["disabled_reason"] as? String)?.contains("410") == true)
                let statuses = try await database.withConnection { connection in
                    try connection.query("SELECT status FROM webhook_messages ORDER BY endpoint_id").map {
                        try $0.decode(String.self, at: 0)
                    }
                }
                #expect(statuses == ["failed", "failed"])

                // The failures are visible, newest first, and paged.
                let page = try await client.merchantJSON(
                    .GET,
                    "/v1/webhook-endpoints/\(broken.id)/attempts?status=failed&limit=2"
                )
                let attempts = try #require(page["data"] as? [[String: Any]])
                #expect(attempts.count == 2 && attempts.allSatisfy { $0["status_code"] as? Int == 500 })
                let next = try #require(page["next_before"] as? Int)
                let rest = try await client.merchantJSON(
                    .GET,
                    "/v1/webhook-endpoints/\(broken.id)/attempts?status=failed&before=\(next)"
                )
                #expect((rest["data"] as? [Any])?.count == 1 && rest["next_before"] is NSNull)

                // Recovering the range queues the failed message again; the endpoint is back and takes it.
                let recovered = try await client.merchantJSON(
                    .POST,
                    "/v1/webhook-endpoints/\(broken.id)/recover",
                    body: #"{"since":"\#(ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600)))"}"#
                )
                #expect(recovered["recovered"] as? Int == 1)
                try await eventually(within: .seconds(15), "the recovered message delivered") {
                    try await database.withConnection { connection in
                        try connection.query("SELECT status FROM webhook_messages WHERE endpoint_id = $1", [broken.id])
                            .first!.decode(String.self, at: 0) == "delivered"
                    }
                }
                #expect(await receiver.received.contains { $0.path == "broken" && $0.status == 200 })
                // Resending needs a message that exists; a bad range is refused.
                let unknown = try await client.send(
                    method: .POST,
                    path: "/v1/webhook-messages/msg_0/resend",
                    headers: [("Authorization", "Bearer \(TestSecrets.apiKey)")]
                )
                #expect(unknown.status == 404)
                let backwards = try await client.send(
                    method: .POST,
                    path: "/v1/webhook-endpoints/\(broken.id)/recover",
                    headers: [("Authorization", "Bearer \(TestSecrets.apiKey)"), ("Content-Type", "application/json")],
                    body: Array(#"{"since":"2026-12-02T00:00:00Z","until":"2026-12-01T00:00:00Z"}"#.utf8)
                )
                #expect(backwards.status == 422)
            }
        }
    }

    /// Runs the reference library (PyPI `standardwebhooks`, installed by `make test`) over the deliveries.
    private static func referenceLibraryAccepts(_ deliveries: [WebhookReceiver.Received], secret: String) throws -> Bool
    {
        let python = try #require(
            ProcessInfo.processInfo.environment["PAYNOTIFY_TEST_PYTHON"],
            "make test sets PAYNOTIFY_TEST_PYTHON (scripts/python-env.sh)"
        )
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("deliveries-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let records = deliveries.map { ["secret": secret, "headers": $0.headers, "body": $0.body] as [String: Any] }
        try JSONSerialization.data(withJSONObject: records).write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/verify-standard-webhooks.py").path,
            file.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

@Suite("A slow merchant endpoint delays nobody else")
struct MerchantWebhookIsolationTests {
    /// One endpoint never answers (until the test ends); another, healthy, gets all of its
    /// messages meanwhile, and webhooks keep being acknowledged: the hanging one holds only its
    /// own slots.
    @Test func aHangingEndpointHoldsOnlyItsOwnSlots() async throws {
        let receiver = WebhookReceiver(answers: ["healthy": [200]], hangingPaths: ["hanging"])
        try await receiver.serve { port in
            var overrides = MerchantWebhookDeliveryTests.overrides
            overrides["PAYNOTIFY_WEBHOOK_TIMEOUT_SECONDS"] = "60"
            // Below the ten messages, so that the limit shows.
            overrides["PAYNOTIFY_WEBHOOK_ENDPOINT_CONCURRENCY"] = "4"
            try await withLiveApp(overrides: overrides) { client, _ in
                let hanging = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/hanging")
                let healthy = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/healthy")
                var orders: [CreatedOrder] = []
                for _ in 0..<10 { orders.append(try await client.createOrder()) }
                for order in orders {
                    let answer = try await client.sandbox("succeeded", order: order.id)
                    #expect(answer.status == 200)
                }
                // No hanging attempt has been answered: every healthy delivery happened beside them.
                try await eventually(within: .seconds(30), "the healthy endpoint's ten messages") {
                    await receiver.received.filter { $0.path == "healthy" }.count >= 10
                }
                // The hanging endpoint has at most its per-endpoint limit in flight.
                #expect(await receiver.received.filter { $0.path == "hanging" }.count <= 4)
                // Its backlog shows in the metrics: all ten undelivered, the healthy one's none. The
                // receiver has the healthy endpoint's last request before the service has recorded
                // its answer, so the metrics are read once that is recorded.
                let healthyBacklog = #"paynotify_merchant_webhook_backlog{endpoint="\#(healthy.id)"} 0"#
                try await eventually(within: .seconds(10), "the healthy endpoint's last answer recorded") {
                    try await client.send(method: .GET, path: "/metrics").text.contains(healthyBacklog)
                }
                let metrics = try await client.send(method: .GET, path: "/metrics").text
                #expect(
                    metrics.contains(#"paynotify_merchant_webhook_backlog{endpoint="\#(hanging.id)"} 10"#),
                    "\(metrics)"
                )
                #expect(metrics.contains(healthyBacklog))
            }
        }
    }
}

@Suite("A claimed message outlives the instance that claimed it")
struct MerchantWebhookLeaseTests {
    /// A message leased by an instance that then died (its `leased_until` set to the lease's end,
    /// and no attempt recorded) is left alone until the lease ends, then delivered once by a
    /// live instance: at least once, never zero, and not twice while the lease holds.
    @Test func aDeadInstancesMessageIsDeliveredAfterItsLease() async throws {
        let receiver = WebhookReceiver(answers: ["hook": [200]])
        try await receiver.serve { port in
            try await withLiveApp(overrides: MerchantWebhookDeliveryTests.overrides) { client, database in
                _ = try await client.createEndpoint(url: "http://127.0.0.1:\(port)/hook")
                let order = try await client.createOrder()
                // The dead instance's transaction: the event, its message, and the claim's lease.
                try await database.withConnection { connection in
                    try connection.transaction { connection in
                        let event = try connection.query(
                            "INSERT INTO order_events (order_id, event, data) VALUES ($1, 'shipped', '{}') RETURNING id",
                            [order.id]
                        ).first!.decode(Int64.self, at: 0)
                        let leased = try connection.execute(
                            "UPDATE webhook_messages SET leased_until = now() + interval '2 seconds' WHERE event_id = $1",
                            [event]
                        )
                        precondition(leased == 1)
                    }
                }
                let leasedAt = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(await receiver.received.isEmpty, "sent while another instance's lease held it")
                try await eventually(within: .seconds(10), "the message delivered after the lease") {
                    await !receiver.received.isEmpty
                }
                #expect(ContinuousClock.now - leasedAt >= .seconds(2))
                try await Task.sleep(for: .milliseconds(500))
                #expect(await receiver.received.count == 1)
            }
        }
    }
}
