import Foundation
import NIOCore
import NIOHTTP1
import PayNotifyClient
import Synchronization

/// The load generator's measurements, each against a running server through its public API only.
public enum Benchmarks {
    // MARK: streams

    /// Opens `count` order streams and reports the open rate and the server's memory per stream.
    public static func streams(_ target: Target, count: Int, concurrency: Int) async throws -> Report {
        let orders = try await target.createOrders(count, concurrency: 32)
        // Settle, so the memory the order creations touched is counted before, not per stream.
        try await Task.sleep(for: .seconds(2))
        let before = try target.sample()
        let fleet = StreamFleet(target: target, orders: orders)
        let ((opened, seconds), overflows) = await ListenOverflows.during {
            await fleet.connectAll(concurrency: concurrency)
        }
        try await Task.sleep(for: .seconds(2))
        let after = try target.sample()
        await fleet.disconnectAll()

        var report = Report(benchmark: "streams")
        report.add("requested", .integer(count))
        report.add("opened", .integer(opened))
        report.add("failures", .integer(count - opened))
        report.add("open_seconds", .number(seconds))
        report.add("open_rate_per_s", .number(Double(opened) / max(seconds, 1e-9)))
        if let overflows { report.add("listen_overflows", .integer(overflows)) }
        if let before, let after {
            report.add("rss_before_kb", .integer(before.residentKilobytes))
            report.add("rss_after_kb", .integer(after.residentKilobytes))
            let perStream = Double((after.residentKilobytes - before.residentKilobytes) * 1024) / Double(max(opened, 1))
            report.add("rss_per_stream_bytes", .number(perStream.rounded()))
        }
        return report
    }

    // MARK: deliver

    /// With `streams` streams open, sends signed webhooks at a fixed `rate` for `seconds`, open-loop
    /// (each is due at its own instant whatever the answers before it did), each to the next order,
    /// and measures webhook-sent → event-read latency from the instant each was due.
    public static func deliver(_ target: Target, streams: Int, rate: Int, seconds: Int, connections: Int) async throws
        -> Report
    {
        let orders = try await target.createOrders(streams, concurrency: 32)
        let total = rate * seconds
        let interval = Duration.seconds(1) / rate
        let start = Shared<ContinuousClock.Instant?>(nil)
        let delivery = LatencyHistogram()
        let delivered = SharedCounter()
        let fleet = StreamFleet(target: target, orders: orders) { _, event, arrived in
            guard event.name == "progress", let index = Self.webhookIndex(in: event.data),
                let start = start.withLock({ $0 })
            else { return }
            delivery.record(arrived - (start + interval * index))
            delivered.increment()
        }
        let (opened, _) = await fleet.connectAll(concurrency: 200)
        guard opened == streams else { throw LoadError("only \(opened) of \(streams) streams opened") }

        let before = try target.sample()
        let answers = LatencyHistogram()
        let accepted = SharedCounter()
        let (jobs, queue) = AsyncStream.makeStream(of: Int.self)
        let now = ContinuousClock.now
        start.withLock { $0 = now }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await target.client.withConnection { connection in
                        for await index in jobs {
                            let order = orders[index % orders.count]
                            let webhook = try target.progressWebhook(
                                order: order.id,
                                percent: index % 100,
                                stage: "lg-\(index)"
                            )
                            let response = try await connection.send(
                                method: .POST,
                                path: "/v1/webhooks/sandbox",
                                headers: webhook.headers,
                                body: webhook.body
                            )
                            answers.record(ContinuousClock.now - (now + interval * index))
                            if response.status == 200 { accepted.increment() }
                        }
                    }
                }
            }
            for index in 0..<total {
                try await Task.sleep(until: now + interval * index, clock: .continuous)
                queue.yield(index)
            }
            queue.finish()
            try await group.waitForAll()
        }
        let sent = accepted.value
        let deadline = ContinuousClock.now + .seconds(10)
        while delivered.value < sent, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let after = try target.sample()
        await fleet.disconnectAll()

        let arrived = delivered.value
        var report = Report(benchmark: "deliver")
        report.add("streams", .integer(streams))
        report.add("rate_per_s", .integer(rate))
        report.add("scheduled", .integer(total))
        report.add("sent", .integer(sent))
        report.add("delivered", .integer(arrived))
        report.add("lost", .integer(sent - arrived))
        report.add("duplicates", .integer(fleet.duplicates))
        report.add("latency_ms", .latency(delivery.summary))
        report.add("answer_latency_ms", .latency(answers.summary))
        if let before, let after {
            let cpu = after.cpuSeconds - before.cpuSeconds
            report.add("server_cpu_s", .number(cpu))
            report.add("server_cpu_s_per_1000_events", .number(cpu / Double(max(arrived, 1)) * 1000))
        }
        return report
    }

    /// The `N` of a load generator's stage `lg-N` in an event's data.
    static func webhookIndex(in data: String) -> Int? {
        guard let range = data.range(of: #""stage": "lg-"#) ?? data.range(of: #""stage":"lg-"#) else { return nil }
        return Int(data[range.upperBound...].prefix { $0.isNumber })
    }

    // MARK: throughput

    /// Closed loop: `concurrency` connections each send a signed webhook as soon as the last was
    /// answered, for `seconds`; reports accepted webhooks per second.
    public static func throughput(_ target: Target, concurrency: Int, seconds: Int) async throws -> Report {
        let orders = try await target.createOrders(max(concurrency * 4, 100), concurrency: 32)
        let latency = LatencyHistogram()
        let accepted = SharedCounter()
        let errors = SharedCounter()
        let counter = SharedCounter()
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    try await target.client.withConnection { connection in
                        while ContinuousClock.now < deadline {
                            let index = counter.increment()
                            let order = orders[index % orders.count]
                            let webhook = try target.progressWebhook(order: order.id, percent: index % 100, stage: "tp")
                            let sent = ContinuousClock.now
                            let response = try await connection.send(
                                method: .POST,
                                path: "/v1/webhooks/sandbox",
                                headers: webhook.headers,
                                body: webhook.body
                            )
                            latency.record(ContinuousClock.now - sent)
                            if response.status == 200 {
                                accepted.increment()
                            } else {
                                errors.increment()
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        var report = Report(benchmark: "throughput")
        report.add("concurrency", .integer(concurrency))
        report.add("seconds", .number(elapsed))
        report.add("accepted", .integer(accepted.value))
        report.add("accepted_per_s", .number(Double(accepted.value) / elapsed))
        report.add("errors", .integer(errors.value))
        report.add("latency_ms", .latency(latency.summary))
        return report
    }

    // MARK: fanout

    /// Opens `streams` ops streams, raises one alert (a forged webhook), and measures how long until
    /// every stream has it.
    public static func fanout(_ target: Target, streams: Int) async throws -> Report {
        guard let token = target.adminToken else { throw LoadError("fanout needs --admin-token") }
        let received = LatencyHistogram()
        let count = SharedCounter()
        let ready = SharedCounter()
        let sentAt = Shared<ContinuousClock.Instant?>(nil)
        let marker = "fanout-\(UInt32.random(in: 0...UInt32.max))"
        let next = SharedCounter()
        let opened = Shared<[any Channel]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(200, streams) {
                group.addTask {
                    while next.increment() < streams {
                        var callbacks = StreamCallbacks()
                        let seen = Shared(false)
                        callbacks.received = { item in
                            switch item {
                            case .retry: ready.increment()
                            case .event(let event) where event.name == "alert" && event.data.contains("bad_signature"):
                                guard
                                    !seen.withLock({ seen in
                                        defer { seen = true }
                                        return seen
                                    }), let sent = sentAt.withLock({ $0 })
                                else {
                                    return
                                }
                                received.record(ContinuousClock.now - sent)
                                count.increment()
                            default: break
                            }
                        }
                        let channel = try await target.streams.open(
                            path: "/v1/ops/events?token=\(token)",
                            callbacks: callbacks
                        )
                        opened.withLock { $0.append(channel) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let channels = opened.withLock { $0 }
        let readyDeadline = ContinuousClock.now + .seconds(30)
        while ready.value < streams, ContinuousClock.now < readyDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let connected = ready.value
        sentAt.withLock { $0 = ContinuousClock.now }
        // A delivery with a bad signature: refused, and announced as an alert naming it.
        let forged = try await target.client.send(
            method: .POST,
            path: "/v1/webhooks/sandbox",
            headers: [("Sandbox-Signature", "t=1,v1=\(marker)"), ("Content-Type", "application/json")],
            body: Array(#"{"id":"\#(marker)"}"#.utf8)
        )
        let deadline = ContinuousClock.now + .seconds(10)
        while count.value < connected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        for channel in channels { channel.close(promise: nil) }
        let summary = received.summary
        var report = Report(benchmark: "fanout")
        report.add("streams", .integer(streams))
        report.add("connected", .integer(connected))
        report.add("received", .integer(count.value))
        report.add("forged_answer_status", .integer(forged.status))
        // The first stream's time is the way through the service (the refused webhook, the alert's
        // commit, its NOTIFY, the read, the broadcast's first write); the rest is the writes' spread.
        report.add("first_ms", .number(summary.min))
        report.add("last_ms", .number(summary.max))
        report.add("p50_ms", .number(summary.p50))
        report.add("p99_ms", .number(summary.p99))
        return report
    }

    // MARK: reconnect

    /// Opens `streams` streams, keeps webhooks flowing at `rate`, drops every stream at once and
    /// reconnects them all with Last-Event-ID; reports how long until all are live again, and the
    /// events lost or received twice.
    public static func reconnect(_ target: Target, streams: Int, rate: Int) async throws -> Report {
        let orders = try await target.createOrders(streams, concurrency: 32)
        let fleet = StreamFleet(target: target, orders: orders)
        let (opened, _) = await fleet.connectAll(concurrency: 200)
        guard opened == streams else { throw LoadError("only \(opened) of \(streams) streams opened") }
        let accepted = Shared<[String: Int]>([:])
        let stop = Shared(false)
        let flow = Task {
            let interval = Duration.seconds(1) / rate
            var index = 0
            let start = ContinuousClock.now
            try await target.client.withConnection { connection in
                while !stop.value {
                    try await Task.sleep(until: start + interval * index, clock: .continuous)
                    let order = orders[index % orders.count]
                    let webhook = try target.progressWebhook(
                        order: order.id,
                        percent: index % 100,
                        stage: "rc-\(index)"
                    )
                    let response = try await connection.send(
                        method: .POST,
                        path: "/v1/webhooks/sandbox",
                        headers: webhook.headers,
                        body: webhook.body
                    )
                    if response.status == 200 { accepted.withLock { $0[order.id, default: 0] += 1 } }
                    index += 1
                }
            }
        }
        try await Task.sleep(for: .seconds(2))
        await fleet.disconnectAll()
        let ((reopened, seconds), overflows) = await ListenOverflows.during {
            await fleet.connectAll(concurrency: streams)
        }
        try await Task.sleep(for: .seconds(2))
        stop.withLock { $0 = true }
        try await flow.value
        let expected = accepted.withLock { $0 }
        let deadline = ContinuousClock.now + .seconds(10)
        var lost = 0
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            lost = fleet.members.reduce(0) { lost, member in
                lost + max(0, expected[member.order.id, default: 0] - Set(member.receivedIDs).count)
            }
        } while lost > 0 && ContinuousClock.now < deadline
        await fleet.disconnectAll()

        var report = Report(benchmark: "reconnect")
        report.add("streams", .integer(streams))
        report.add("rate_per_s", .integer(rate))
        report.add("reconnected", .integer(reopened))
        report.add("all_live_after_ms", .number(seconds * 1000))
        if let overflows { report.add("listen_overflows", .integer(overflows)) }
        report.add("events_sent", .integer(expected.values.reduce(0, +)))
        report.add("lost", .integer(lost))
        report.add("duplicates", .integer(fleet.duplicates))
        return report
    }
}
