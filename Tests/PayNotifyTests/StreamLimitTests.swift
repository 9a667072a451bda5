import Foundation
import NIOCore
import NIOHTTP1
import PayNotify
import PayNotifyClient
import Synchronization
import TestSupport
import Testing

/// Opens each stream in turn and keeps them all open while `body` runs with their statuses (and,
/// for refusals, their JSON bodies).
private func holdingStreams(
    _ requests: ArraySlice<(path: String, headers: [(String, String)])>,
    via client: LoopbackHTTPClient,
    answers: [(status: Int, headers: HTTPHeaders, body: String)] = [],
    _ body: ([(status: Int, headers: HTTPHeaders, body: String)]) async throws -> Void
) async throws {
    guard let request = requests.first else { return try await body(answers) }
    try await client.stream(path: request.path, headers: request.headers) { stream in
        var text = ""
        if stream.status == 200 {
            _ = try await stream.next()  // registered: the answer's head came after registration
        } else {
            text = String(decoding: try await stream.remainingBody(), as: UTF8.self)
        }
        try await holdingStreams(
            requests.dropFirst(),
            via: client,
            answers: answers + [(stream.status, stream.headers, text)],
            body
        )
    }
}

@Suite("Stream limits, slow clients and shutdown")
struct StreamLimitTests {
    /// Per-order, per-address and per-instance limits refuse with 429 / 503, a JSON body and
    /// Retry-After; X-Forwarded-For is believed only from a trusted proxy.
    @Test func limitsRefuseAsSpecified() async throws {
        let limits = [
            "PAYNOTIFY_MAX_STREAMS_PER_ORDER": "2", "PAYNOTIFY_MAX_STREAMS_PER_IP": "3", "PAYNOTIFY_MAX_STREAMS": "4",
        ]
        try await withLiveApp(overrides: limits) { client, _ in
            let a = try await client.createOrder()
            let b = try await client.createOrder()
            let spoofed = [("X-Forwarded-For", "203.0.113.9")]
            let requests: [(path: String, headers: [(String, String)])] = [
                (a.streamPath, []), (a.streamPath, []), (a.streamPath, []),  // the third: per order
                (b.streamPath, spoofed),  // the third from this address
                (b.streamPath, spoofed),  // the fourth: per address, whatever the header says
            ]
            try await holdingStreams(requests[...], via: client) { answers in
                #expect(answers.map(\.status) == [200, 200, 429, 200, 429])
                #expect(answers[2].body.contains(#""code":"too_many_streams_for_order""#))
                #expect(answers[4].body.contains(#""code":"too_many_streams_from_address""#))
                #expect(answers[2].headers["Retry-After"].first != nil)
            }
        }
        let behindProxy = limits.merging(["PAYNOTIFY_TRUSTED_PROXIES": "127.0.0.1,::1"]) { $1 }
        try await withLiveApp(overrides: behindProxy) { client, _ in
            var orders: [CreatedOrder] = []
            for _ in 0..<5 { orders.append(try await client.createOrder()) }
            let requests = orders.enumerated().map { index, order in
                (path: order.streamPath, headers: [("X-Forwarded-For", "198.51.100.7, 203.0.113.\(index)")])
            }
            try await holdingStreams(requests[...], via: client) { answers in
                // Five client addresses behind the proxy: only the instance's own limit refuses.
                #expect(answers.map(\.status) == [200, 200, 200, 200, 503])
                #expect(answers[4].body.contains(#""code":"streams_full""#))
                #expect(answers[4].headers["Retry-After"].first != nil)
            }
        }
    }

    /// A client that stops reading is dropped once its buffers fill, and can resume; a reader of
    /// the same order meanwhile gets every event, without waiting on it.
    ///
    /// How much a client can leave unread before the server's writes block is the kernel's socket
    /// buffers (up to 4 MB here) plus NIO's 64 KB: events are posted until the drop is reported
    /// on the ops stream, at most 3,000 of 4 KB.
    @Test func aClientThatNeverReadsIsDropped() async throws {
        let settings = ["PAYNOTIFY_STREAM_BUFFER": "16", "PAYNOTIFY_ADMIN_TOKEN": TestSecrets.adminToken]
        try await withLiveApp(overrides: settings) { client, database in
            let order = try await client.createOrder()
            let blob = String(repeating: "x", count: 3900)
            let connected = Counter()
            let dropped = Counter()
            let posted = Timeline()
            let delivered = Timeline()
            let results = try await withThrowingTaskGroup(of: (role: String, read: Int, closed: Bool).self) { group in
                group.addTask {
                    try await client.stream(path: "/v1/ops/events?token=\(TestSecrets.adminToken)") { ops in
                        connected.increment()
                        while let event = try await ops.nextEvent() {
                            if event.name == "alert", event.json["kind"] as? String == "slow_client_dropped" {
                                dropped.increment()
                                return ("ops", 0, false)
                            }
                        }
                        return ("ops", 0, true)
                    }
                }
                // The reader: every event, promptly, until the last one.
                group.addTask {
                    try await client.stream(path: order.streamPath, deadline: .now() + .seconds(90)) { stream in
                        _ = try await stream.nextEvent()
                        connected.increment()
                        var read = 0
                        while let event = try await stream.nextEvent() {
                            delivered.record()
                            read += 1
                            if event.name == "test.done" { return ("reader", read, false) }
                        }
                        return ("reader", read, true)
                    }
                }
                // The stalled client: reads the snapshot and nothing more until everything is
                // posted, then reads what its connection still holds.
                group.addTask {
                    try await client.stream(
                        path: order.streamPath,
                        deadline: .now() + .seconds(90),
                        receiveBufferSize: 2048
                    ) { stream in
                        _ = try await stream.nextEvent()
                        connected.increment()
                        try await eventually(within: .seconds(80), "all posted") { posted.isClosed }
                        var read = 0
                        do {
                            while try await stream.nextEvent() != nil { read += 1 }
                        } catch {
                            return ("stalled", read, true)
                        }
                        return ("stalled", read, false)
                    }
                }
                try await eventually("three streams open") { connected.count == 3 }
                let started = ContinuousClock.now
                var sent = 0
                var afterDrop = 0
                while sent < 3000 && afterDrop < 20 {
                    let name = afterDrop == 19 ? "test.done" : "ticket.issued"
                    let response = try await client.send(
                        method: .POST,
                        path: "/v1/orders/\(order.id)/events",
                        headers: [
                            ("Authorization", "Bearer \(TestConfiguration.apiKey)"),
                            ("Content-Type", "application/json"),
                        ],
                        body: Array(#"{"event":"\#(name)","data":{"blob":"\#(blob)"}}"#.utf8)
                    )
                    #expect(response.status == 201)
                    posted.record()
                    sent += 1
                    if dropped.count > 0 { afterDrop += 1 }
                }
                posted.close()
                let results = try await group.reduce(into: []) { $0.append($1) }
                // Before the clients' own 90 s deadlines: the server closed the stalled stream. (The
                // time is mostly the posting of up to 3,000 events, which a 2-core machine running
                // the other suites beside this one has taken 47 s to do.)
                #expect(ContinuousClock.now - started < .seconds(75))
                return results
            }
            #expect(dropped.count == 1, "the stalled client was never dropped")
            let reader = try #require(results.first { $0.role == "reader" })
            let stalled = try #require(results.first { $0.role == "stalled" })
            let sent = posted.instants.count
            #expect(reader.read == sent && !reader.closed)
            #expect(stalled.closed && stalled.read < sent)
            // The reader never waited on the stalled client: each event reached it soon after its
            // webhook was answered.
            let lags = zip(posted.instants, delivered.instants).map { $1 - $0 }
            #expect(lags.max() ?? .zero < .seconds(2), "slowest delivery \(lags.max() ?? .zero)")
            // The stalled client resumes from its last event and gets the rest.
            let log = try await logIDs(of: order.id, in: database)
            try await client.stream(path: order.streamPath, headers: [("Last-Event-ID", "\(log[stalled.read])")]) {
                stream in
                var rest = 0
                while rest < sent - stalled.read, try await stream.nextEvent() != nil { rest += 1 }
                #expect(rest == sent - stalled.read)
            }
        }
    }

    /// A client that hangs up frees its stream at once (its place under the limits, its memory),
    /// without waiting for a write to fail.
    @Test func aClientThatLeavesIsForgotten() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_MAX_STREAMS_PER_ORDER": "1"]) { client, _ in
            let order = try await client.createOrder()
            for _ in 0..<3 {
                try await client.stream(path: order.streamPath) { stream in
                    #expect(stream.status == 200)
                    _ = try await stream.nextEvent()
                }
                try await eventually(within: .seconds(2), "the stream is gone") {
                    try await client.send(method: .GET, path: "/metrics").text.contains(
                        #"paynotify_streams_open{kind="order"} 0.0"#
                    )
                }
            }
        }
    }

    /// On graceful shutdown an open stream gets a short `retry:` and is ended, so its browser
    /// reconnects (to another instance) at once.
    @Test func shutdownEndsStreamsWithAShortRetry() async throws {
        let seen = Counter()
        // The reading task outlives the server: it sees what shutdown sends.
        let reading = try await withLiveApp { client, _ in
            let order = try await client.createOrder()
            let reading = Task {
                try await client.stream(path: order.streamPath) { stream in
                    var items: [EventStreamParser.Item] = []
                    while let item = try await stream.next() {
                        items.append(item)
                        if case .event = item { seen.increment() }
                    }
                    return items
                }
            }
            try await eventually("the snapshot arrived") { seen.count == 1 }
            return reading
        }
        let items = try await reading.value
        #expect(items.last == .retry(250))
    }
}

/// Instants recorded by one task and read by another.
final class Timeline: Sendable {
    private let state = Mutex<(instants: [ContinuousClock.Instant], closed: Bool)>(([], false))

    func record() { self.state.withLock { $0.instants.append(.now) } }

    func close() { self.state.withLock { $0.closed = true } }

    var instants: [ContinuousClock.Instant] { self.state.withLock { $0.instants } }

    var isClosed: Bool { self.state.withLock { $0.closed } }
}
