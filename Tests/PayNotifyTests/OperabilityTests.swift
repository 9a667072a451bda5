import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOHTTP1
import PayNotify
import PayNotifyClient
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("Metrics, request ids, logs, pages and the demo")
struct OperabilityTests {
    /// /metrics counts webhooks by provider and outcome, stream openings and refusals, deliveries,
    /// and reads the levels (open streams, pool, listener) when scraped.
    @Test func prometheusMetrics() async throws {
        try await withLiveApp { client, _ in
            // Before any event, the series known in advance are there at 0.
            let before = try await client.send(method: .GET, path: "/metrics").text
            for line in [
                #"paynotify_webhooks_total{provider="sandbox",outcome="applied"} 0"#,
                #"paynotify_webhooks_total{provider="sandbox",outcome="invalid_signature"} 0"#,
                #"paynotify_webhooks_total{provider="sandbox",outcome="not_recorded"} 0"#,
                #"paynotify_streams_refused_total{reason="too_many_streams_from_address"} 0"#,
                #"paynotify_streams_opened_total{kind="ops"} 0"#,
                "paynotify_streams_dropped_total 0",
            ] {
                #expect(before.contains(line + "\n"), "missing at start: \(line)")
            }
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath) { stream in
                _ = try await stream.nextEvent()
                try await client.sandbox("processing", order: order.id)
                _ = try await stream.nextEvent()
                let text = try await client.send(method: .GET, path: "/metrics").text
                for line in [
                    #"paynotify_webhooks_total{provider="sandbox",outcome="applied"} 1"#,
                    #"paynotify_streams_opened_total{kind="order"} 1"#,
                    #"paynotify_streams_open{kind="order"} 1.0"#,
                    "paynotify_listener_up 1.0",
                    "paynotify_listener_reconnects_total 0",
                    "paynotify_delivery_latency_seconds_count 1",
                ] {
                    #expect(text.contains(line + "\n"), "missing \(line)")
                }
                #expect(text.contains(#"paynotify_webhook_duration_seconds_count{provider="sandbox"} 1"#))
                #expect(text.contains("paynotify_db_pool_in_use "))
                #expect(text.contains("paynotify_db_pool_waiting "))
            }
            try await client.stream(path: "/v1/orders/\(order.id)/events") { _ in }
            let text = try await client.send(method: .GET, path: "/metrics").text
            #expect(text.contains(#"paynotify_streams_refused_total{reason="invalid_token"} 1"#))
        }
    }

    /// A sane X-Request-ID is kept and echoed; a missing or hostile one is replaced by a fresh one.
    @Test func requestIDs() async throws {
        try await withApp { client, _ in
            let kept = try await client.execute(
                uri: "/healthz",
                method: .get,
                headers: [.init("X-Request-ID")!: "abc-123"]
            )
            #expect(kept.headers[.init("X-Request-ID")!] == "abc-123")
            let fresh = try await client.execute(uri: "/no/such/route", method: .get)
            #expect(fresh.headers[.init("X-Request-ID")!]?.count == 32)
            let hostile = try await client.execute(
                uri: "/healthz",
                method: .get,
                headers: [.init("X-Request-ID")!: "a b\u{7f}"]
            )
            #expect(hostile.headers[.init("X-Request-ID")!] != "a b\u{7f}")
        }
    }

    /// JSON logs: one object a line with the level, message, label and metadata as fields.
    @Test func jsonLogLines() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "paynotify") { label in
            JSONLogHandler(label: label) { line in lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }
        }
        logger[metadataKey: "request_id"] = "r-1"
        logger.warning("webhook refused", metadata: ["provider": "sandbox", "detail": "line\nbreak \"quoted\""])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n") && line.dropLast().firstIndex(of: "\n") == nil)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["message"] as? String == "webhook refused")
        #expect(object["label"] as? String == "paynotify")
        #expect(object["request_id"] as? String == "r-1")
        #expect(object["provider"] as? String == "sandbox")
        #expect(object["detail"] as? String == "line\nbreak \"quoted\"")
        #expect(object["ts"] is String)
    }

    /// The pages are served with a strict Content-Security-Policy; the demo's endpoints answer only
    /// in development mode, and then create and pay a sandbox order through the real paths.
    @Test func pagesAndDemo() async throws {
        try await withApp { client, _ in
            for path in ["/", "/checkout/ord_x", "/ops", "/assets/checkout.js", "/assets/style.css"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            }
            #expect(try await client.execute(uri: "/assets/../Package.swift", method: .get).status == .notFound)
            let off = try await client.execute(uri: "/demo/orders", method: .post, body: ByteBuffer(string: "{}"))
            #expect(off.status == .notFound && off.errorCode == "demo_disabled")
        }
        try await withApp(overrides: ["PAYNOTIFY_DEMO": "true"]) { client, database in
            let created = try await client.execute(uri: "/demo/orders", method: .post, body: ByteBuffer(string: "{}"))
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["stream_token"] is String)
            for outcome in [
                #"{"outcome":"processing"}"#, #"{"outcome":"progress","percent":75}"#, #"{"outcome":"succeeded"}"#,
            ] {
                let sent = try await client.execute(
                    uri: "/demo/orders/\(id)/outcome",
                    method: .post,
                    body: ByteBuffer(string: outcome)
                )
                #expect(sent.status == .ok, "\(outcome): \(String(buffer: sent.body))")
            }
            let events = try await database.withConnection { connection in
                try connection.query("SELECT event FROM order_events WHERE order_id = $1 ORDER BY id", [id]).map {
                    try $0.decode(String.self, at: 0)
                }
            }
            #expect(events == ["status", "status", "progress", "status", "finish"])
            let bad = try await client.execute(
                uri: "/demo/orders/\(id)/outcome",
                method: .post,
                body: ByteBuffer(string: #"{"outcome":"teleported"}"#)
            )
            #expect(bad.status == .unprocessableContent)
        }
    }
}
