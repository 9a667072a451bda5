import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import TestSupport
import Testing

@Suite("Through real nginx, two real instances")
struct NginxTests {
    /// Events pass through nginx as they happen: the first event of an open stream arrives well
    /// before the next heartbeat (15 s), so nothing buffers it; the forwarded client address and the
    /// request id get through.
    @Test func eventsArriveUnbuffered() async throws {
        try await Deployment.run { deployment in
            let client = deployment.viaNginx
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath) { stream in
                #expect(stream.status == 200)
                #expect(stream.headers["Content-Type"].first == "text/event-stream; charset=utf-8")
                #expect(try await stream.nextEvent()?.name == "status")
                let sent = ContinuousClock.now
                #expect(try await client.sandbox("processing", order: order.id).status == 200)
                let processing = try await stream.nextEvent()
                let latency = ContinuousClock.now - sent
                #expect(processing?.json["status"] as? String == "processing")
                #expect(latency < .seconds(2), "the event took \(latency) through nginx")
            }
            // The merchant event stream passes through unbuffered too, whichever instance took the
            // webhook. Its events wait for every older transaction in the cluster (the feed's order),
            // and other tests' transactions can hold them for seconds; so what is measured is what
            // nginx adds, against a stream opened on an instance directly at the same time.
            let authorization = ("Authorization", "Bearer \(TestSecrets.apiKey)")
            try await client.stream(path: "/v1/events", headers: [authorization]) { viaNginx in
                try await deployment.direct(0).stream(path: "/v1/events", headers: [authorization]) { direct in
                    #expect(viaNginx.status == 200 && direct.status == 200)
                    #expect(try await client.sandbox("succeeded", order: order.id).status == 200)
                    let directly = try #require(try await Self.arrival(of: "order.succeeded", on: &direct))
                    let throughNginx = try #require(try await Self.arrival(of: "order.succeeded", on: &viaNginx))
                    #expect(
                        throughNginx - directly < .seconds(2),
                        "nginx held the merchant event for \(throughNginx - directly)"
                    )
                }
            }
            let echoed = try await client.send(method: .GET, path: "/healthz", headers: [("X-Request-ID", "e2e-abc")])
            #expect(echoed.headers["X-Request-ID"].first == "e2e-abc")
        }
    }

    /// One instance is SIGKILLed while streams are open on both: its clients reconnect with
    /// Last-Event-ID through nginx to the other instance and miss nothing, while webhooks (retried
    /// by the "provider" on a 5xx) keep coming.
    @Test func streamsSurviveAnInstanceKilled() async throws {
        try await Deployment.run { deployment in
            let client = deployment.viaNginx
            var orders: [CreatedOrder] = []
            for _ in 0..<12 { orders.append(try await client.createOrder()) }
            let plans = orders.flatMap { [FollowerPlan($0, via: [client]), FollowerPlan($0, via: [client])] }
            let records = try await following(plans, within: .seconds(90)) { [orders] in
                let perInstance = try await Self.openStreams(deployment)
                #expect(perInstance.allSatisfy { $0 > 0 }, "streams per instance: \(perInstance)")
                for percent in [10, 20] { try await client.sandboxToEvery(orders, "progress", progress: percent) }
                deployment.instance(0).signal(SIGKILL)
                for percent in [30, 40, 50] { try await client.sandboxToEvery(orders, "progress", progress: percent) }
                try await client.sandboxToEvery(orders, "succeeded")
            }
            #expect(records.contains { $0.connections > 1 }, "no stream had to move")
            for record in records {
                #expect(try await expectComplete(record, in: deployment.database), "\(record)")
                #expect(record.received.count == 7)  // five progress, succeeded, finish
            }
        }
    }

    /// When the event named `name` arrived on `stream`; events before it are skipped (a stream opened
    /// without Last-Event-ID may still see an older event that a transaction was holding back).
    /// `nil` if the stream ended first.
    static func arrival(of name: String, on stream: inout EventStreamReader) async throws -> ContinuousClock.Instant? {
        while let event = try await stream.nextEvent() {
            if event.name == name { return .now }
        }
        return nil
    }

    /// Open order streams on each instance, from its own metrics.
    static func openStreams(_ deployment: Deployment) async throws -> [Int] {
        var counts: [Int] = []
        for index in deployment.instancePorts.indices {
            let text = try await deployment.direct(index).send(method: .GET, path: "/metrics").text
            let line = text.split(separator: "\n").first { $0.hasPrefix(#"paynotify_streams_open{kind="order"}"#) }
            counts.append(line.flatMap { $0.split(separator: " ").last }.flatMap { Int(Double($0) ?? -1) } ?? -1)
        }
        return counts
    }
}
