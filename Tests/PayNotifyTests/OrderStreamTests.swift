import Foundation
import NIOCore
import NIOHTTP1
import PayNotifyClient
import TestSupport
import Testing

@Suite("Order streams over HTTP")
struct OrderStreamTests {
    /// One stream sees the whole life of an order: retry, snapshot, processing, progress, succeeded,
    /// finish, then the server ends it; a reconnect after finish is 204.
    @Test func lifecycleOverOneStream() async throws {
        try await withLiveApp { client, database in
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath) { stream in
                #expect(stream.status == 200)
                #expect(stream.headers["Content-Type"].first == "text/event-stream; charset=utf-8")
                #expect(stream.headers["Cache-Control"].first == "no-cache")
                #expect(stream.headers["X-Accel-Buffering"].first == "no")
                #expect(try await stream.next() == .retry(3000))
                let snapshot = try #require(try await stream.nextEvent())
                #expect(snapshot.name == "status")
                #expect(snapshot.json["status"] as? String == "pending")

                #expect(try await client.sandbox("processing", order: order.id).status == 200)
                let processing = try #require(try await stream.nextEvent())
                #expect(processing.name == "status" && processing.json["status"] as? String == "processing")
                #expect(processing.json["previous"] as? String == "pending")

                #expect(try await client.sandbox("progress", order: order.id, progress: 40).status == 200)
                let progress = try #require(try await stream.nextEvent())
                #expect(progress.name == "progress" && progress.json["percent"] as? Int == 40)

                #expect(try await client.sandbox("succeeded", order: order.id).status == 200)
                let rest = try await stream.eventsThroughFinish()
                #expect(rest.map(\.name) == ["status", "finish"])
                #expect(rest.first?.json["status"] as? String == "succeeded")
                #expect(rest.last?.json["status"] as? String == "succeeded")
                #expect(try await stream.next() == nil)  // the server ended the response

                let ids = [snapshot, processing, progress].compactMap(\.logID) + rest.compactMap(\.logID)
                let log = try await logIDs(of: order.id, in: database)
                #expect(ids == log)
            }
            let log = try await logIDs(of: order.id, in: database)
            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(log.last!)")]) { stream in
                #expect(stream.status == 204)
            }
            // An id this database never issued (a restore, a lossy failover) gets the order as it is.
            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(log.last! + 1000)")]) {
                stream in
                #expect(stream.status == 200)
                let names = try await stream.eventsThroughFinish().map(\.name)
                #expect(names == ["status", "finish"])
            }
        }
    }

    /// Once live, a stream holds no task of its own, yet its response ends where the stream does,
    /// and the connection then serves the next request: on a connection whose first request was a
    /// stream's (answered apart from Hummingbird) and on one Hummingbird serves already (a plain
    /// request first). With `Connection: close` the stream is served alike, and the connection closes.
    @Test(arguments: [false, true])
    func aLiveStreamsResponseEndsWithIt(plainRequestFirst: Bool) async throws {
        try await withLiveApp { client, _ in
            let orders = [try await client.createOrder(), try await client.createOrder()]
            let health = try await client.withConnection { connection in
                if plainRequestFirst {
                    #expect(try await connection.send(method: .GET, path: "/healthz").status == 200)
                }
                for order in orders {  // one after another on the same connection
                    try await connection.stream(path: order.streamPath) {
                        (stream: inout EventStreamReader) async throws in
                        #expect(try await stream.nextEvent()?.name == "status")
                        #expect(try await client.sandbox("processing", order: order.id).status == 200)
                        #expect(try await stream.nextEvent()?.name == "status")
                        #expect(try await client.sandbox("succeeded", order: order.id).status == 200)
                        #expect(try await stream.eventsThroughFinish().map(\.name) == ["status", "finish"])
                        #expect(try await stream.next() == nil)
                    }
                }
                return try await connection.send(method: .GET, path: "/healthz")
            }
            #expect(health.status == 200)

            let closing = try await client.createOrder()
            try await client.stream(path: closing.streamPath, headers: [("Connection", "close")]) {
                (stream: inout EventStreamReader) async throws in
                #expect(try await stream.nextEvent()?.name == "status")
                #expect(try await client.sandbox("processing", order: closing.id).status == 200)
                #expect(try await stream.nextEvent()?.name == "status")
                #expect(try await client.sandbox("succeeded", order: closing.id).status == 200)
                #expect(try await stream.eventsThroughFinish().map(\.name) == ["status", "finish"])
                #expect(try await stream.next() == nil)
            }
        }
    }

    /// A client that drops mid-way and reconnects with Last-Event-ID gets exactly the events it
    /// missed, in order, then live ones; the seeds' /orderpay route and ?lastEventId= work alike.
    @Test func reconnectGetsExactlyTheMissedEvents() async throws {
        try await withLiveApp { client, database in
            let order = try await client.createOrder()
            let first = try await client.stream(path: order.streamPath) { stream in
                try await stream.nextEvent()
            }
            let cursor = try #require(first?.logID)
            // While nobody listens: processing and two progress events.
            try await client.sandbox("processing", order: order.id)
            try await client.sandbox("progress", order: order.id, progress: 20)
            try await client.sandbox("progress", order: order.id, progress: 70)
            let missed = try await logIDs(of: order.id, in: database).filter { $0 > cursor }
            #expect(missed.count == 3)

            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(cursor)")]) { stream in
                #expect(try await stream.next() == .retry(3000))
                var replayed: [Int64] = []
                for _ in missed { replayed.append(try #require(try await stream.nextEvent()?.logID)) }
                #expect(replayed == missed)
            }
            try await client.stream(path: "/orderpay?payid=\(order.id)&token=\(order.token)&lastEventId=\(missed[1])") {
                stream in
                #expect(try await stream.nextEvent()?.logID == missed[2])
                try await client.sandbox("succeeded", order: order.id)
                let names = try await stream.eventsThroughFinish().map(\.name)
                #expect(names == ["status", "finish"])
            }
        }
    }

    /// Reproducer: a matching success after the order was canceled is money taken, so the order
    /// becomes `succeeded` (`paid_after_final`) and finishes again. Streams ended at the first
    /// `finish`: a stream opened afterwards showed `succeeded` and then `finish` `canceled`, and a
    /// reconnect from before the cancel ended at the canceled `finish`. The order's last `finish`
    /// is now the one that ends streams; one a later one superseded is not sent.
    @Test func aPaymentAfterTheOrderEndedFinishesItAgain() async throws {
        try await withLiveApp { client, database in
            let order = try await client.createOrder()
            let snapshotID = try await client.stream(path: order.streamPath) { stream in
                let snapshot = try #require(try await stream.nextEvent())
                let canceled = try await client.send(
                    method: .POST,
                    path: "/v1/orders/\(order.id)/cancel",
                    headers: [("Authorization", "Bearer \(TestSecrets.apiKey)")]
                )
                #expect(canceled.status == 200)
                // Live at the time, the stream ends with what was true then.
                let ending = try await stream.eventsThroughFinish()
                #expect(ending.map { $0.json["status"] as? String } == ["canceled", "canceled"])
                return try #require(snapshot.logID)
            }
            #expect(try await client.sandbox("succeeded", order: order.id).status == 200)

            try await client.stream(path: order.streamPath) { stream in
                let events = try await stream.eventsThroughFinish()
                #expect(events.map(\.name) == ["status", "finish"])
                #expect(events.map { $0.json["status"] as? String } == ["succeeded", "succeeded"])
            }
            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(snapshotID)")]) { stream in
                let events = try await stream.eventsThroughFinish()
                #expect(events.map(\.name) == ["status", "status", "finish"])
                #expect(events.map { $0.json["status"] as? String } == ["canceled", "succeeded", "succeeded"])
            }
            let log = try await logIDs(of: order.id, in: database)
            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(log.last!)")]) { stream in
                #expect(stream.status == 204)
            }
        }
    }

    /// A missing, wrong, expired or other order's token is 401 JSON whether or not the order
    /// exists; a malformed Last-Event-ID is 400, never a replay of everything.
    @Test func refusals() async throws {
        try await withLiveApp { client, _ in
            let order = try await client.createOrder()
            let other = try await client.createOrder()
            let expiredToken = "v1.\(Int(Date().timeIntervalSince1970) - 10).AAAA"
            let paths = [
                "/v1/orders/\(order.id)/events",
                "/v1/orders/\(order.id)/events?token=\(other.token)",
                "/v1/orders/\(order.id)/events?token=\(expiredToken)",
                "/v1/orders/\(order.id)/events?token=garbage",
                "/v1/orders/ord_doesnotexist00000000000000/events?token=\(order.token)",
                "/v1/orders/ord_doesnotexist00000000000000/events",
                "/orderpay?payid=\(order.id)&token=\(other.token)",
            ]
            var bodies: Set<String> = []
            for path in paths {
                try await client.stream(path: path) { stream in
                    #expect(stream.status == 401, "\(path)")
                    let body = String(decoding: try await stream.remainingBody(), as: UTF8.self)
                    #expect(body.contains(#""code":"invalid_token""#), "\(path)")
                    bodies.insert(body)
                }
            }
            #expect(bodies.count == 1)  // nothing in the answer tells the cases apart
            try await client.stream(path: order.streamPath, headers: [("Authorization", "Bearer \(order.token)")]) {
                stream in
                #expect(stream.status == 200)
            }
            for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
                try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", bad)]) { stream in
                    #expect(stream.status == 400, "\(bad)")
                    let body = String(decoding: try await stream.remainingBody(), as: UTF8.self)
                    #expect(body.contains(#""code":"invalid_last_event_id""#))
                }
            }
            try await client.stream(path: "/orderpay?token=\(order.token)") { stream in
                #expect(stream.status == 400)
            }
        }
    }

    /// Keepalive comments fill silence, a stream ends at its maximum age, and allowed origins get CORS.
    @Test func heartbeatsMaximumAgeAndCORS() async throws {
        let settings = [
            "PAYNOTIFY_HEARTBEAT_SECONDS": "1", "PAYNOTIFY_STREAM_MAX_SECONDS": "5",
            "PAYNOTIFY_ALLOWED_ORIGINS": "https://shop.example.com", "PAYNOTIFY_STREAM_RETRY_MS": "1500",
        ]
        try await withLiveApp(overrides: settings) { client, _ in
            let order = try await client.createOrder()
            let started = ContinuousClock.now
            try await client.stream(path: order.streamPath, headers: [("Origin", "https://shop.example.com")]) {
                stream in
                #expect(stream.headers["Access-Control-Allow-Origin"].first == "https://shop.example.com")
                var items: [EventStreamParser.Item] = []
                while let item = try await stream.next() { items.append(item) }
                #expect(items.first == .retry(1500))
                #expect(items.filter { $0 == .comment("keepalive") }.count >= 2)
            }
            let lifetime = ContinuousClock.now - started
            #expect(lifetime >= .seconds(5) && lifetime < .seconds(9))
            try await client.stream(path: order.streamPath, headers: [("Origin", "https://evil.example.com")]) {
                stream in
                #expect(stream.headers["Access-Control-Allow-Origin"].isEmpty)
            }
        }
    }
}
