import Foundation
import NIOCore
import NIOHTTP1
import PayNotify
import PayNotifyClient
import Postgres
import Synchronization
import TestSupport
import Testing

/// What a merchant event stream has delivered so far, read by a task of its own.
private final class Collected: Sendable {
    private let events = Mutex<[EventStreamParser.Event]>([])

    func append(_ event: EventStreamParser.Event) { self.events.withLock { $0.append(event) } }

    var all: [EventStreamParser.Event] { self.events.withLock { $0 } }
}

private let authorization = ("Authorization", "Bearer \(TestSecrets.apiKey)")

@Suite("The merchant event stream")
struct MerchantEventStreamTests {
    /// Opens `/v1/events` (with `query` and headers), collecting its events until the task is cancelled.
    private static func follow(
        _ client: LoopbackHTTPClient,
        query: String = "",
        headers: [(String, String)] = [],
        into collected: Collected
    ) -> Task<Void, any Error> {
        Task {
            try await client.stream(path: "/v1/events\(query)", headers: [authorization] + headers) { stream in
                guard stream.status == 200 else { throw UnexpectedAnswer(description: "status \(stream.status)") }
                while let event = try await stream.nextEvent() { collected.append(event) }
            }
        }
    }

    /// Every order's events arrive in one stream, typed; a stream opened on another instance with
    /// Last-Event-ID continues right after it; `?types=` filters.
    @Test func everyOrderResumableAnywhereFiltered() async throws {
        let database = try await TestDatabase.create()
        try await withLiveApp(database: database) { client, _ in
            let collected = Collected()
            let following = Self.follow(client, into: collected)
            defer { following.cancel() }
            try await Task.sleep(for: .milliseconds(300))
            let first = try await client.createOrder()
            let second = try await client.createOrder()
            try await client.sandbox("processing", order: first.id)
            try await client.sandbox("succeeded", order: second.id)
            try await client.sandbox("succeeded", order: first.id)
            try await eventually(within: .seconds(15), "three events") { collected.all.count == 3 }
            let events = collected.all
            #expect(events.map(\.name) == ["order.processing", "order.succeeded", "order.succeeded"])
            #expect(events.map { $0.data.contains(first.id) } == [true, false, true])
            let ids = events.compactMap { $0.id.flatMap { Int64($0) } }
            #expect(ids == ids.sorted() && ids.count == 3)

            // Another instance on the same database resumes after the first event, once each.
            try await withLiveApp(database: database) { other, _ in
                let resumed = Collected()
                let resuming = Self.follow(other, headers: [("Last-Event-ID", "\(ids[0])")], into: resumed)
                defer { resuming.cancel() }
                let succeededOnly = Collected()
                let filtering = Self.follow(other, query: "?types=order.succeeded", into: succeededOnly)
                defer { filtering.cancel() }
                try await Task.sleep(for: .milliseconds(300))
                try await client.sandbox("processing", order: (try await client.createOrder()).id)
                let third = try await client.createOrder()
                try await client.sandbox("succeeded", order: third.id)
                try await eventually(within: .seconds(15), "the resumed and the filtered streams") {
                    resumed.all.count == 4 && succeededOnly.all.count == 1
                }
                #expect(resumed.all.compactMap(\.id).prefix(2).map { Int64($0) } == Array(ids[1...]))
                #expect(succeededOnly.all.map(\.name) == ["order.succeeded"])
                #expect(succeededOnly.all.first?.data.contains(third.id) == true)
            }
        }
    }

    /// An event whose transaction drew its id first but committed last is not skipped: the stream
    /// holds back what committed after it until it has committed, then sends both, once.
    @Test func anEarlierIDCommittedLaterIsNotSkipped() async throws {
        try await withLiveApp { client, database in
            let x = try await client.createOrder()
            let y = try await client.createOrder()
            let collected = Collected()
            let following = Self.follow(client, into: collected)
            defer { following.cancel() }
            try await Task.sleep(for: .milliseconds(300))

            let configuration = try ConnectionConfiguration(database.url)
            let slow = try Connection.connect(configuration)
            let fast = try Connection.connect(configuration)
            defer {
                slow.close()
                fast.close()
            }
            let insert = "INSERT INTO order_events (order_id, event, data) VALUES ($1, 'shipped', '{}') RETURNING id"
            let announce = "SELECT pg_notify('order_events', $1)"
            try slow.execute("BEGIN")
            let early = try slow.query(insert, [x.id]).first!.decode(Int64.self, at: 0)
            try fast.execute("BEGIN")
            let late = try fast.query(insert, [y.id]).first!.decode(Int64.self, at: 0)
            try fast.execute("COMMIT")
            try fast.execute(announce, [#"{"orders":["\#(y.id)"]}"#])
            #expect(early < late)
            try await Task.sleep(for: .seconds(1))
            #expect(collected.all.isEmpty, "sent before an earlier transaction ended")
            try slow.execute("COMMIT")
            try fast.execute(announce, [#"{"orders":["\#(x.id)"]}"#])
            try await eventually(within: .seconds(15), "both events") { collected.all.count == 2 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(collected.all.map { $0.id.flatMap { Int64($0) } } == [early, late])
        }
    }

    /// A bad id, an id the log does not have, and a bad filter are refused clearly.
    @Test func badResumesAndFiltersAreRefused() async throws {
        try await withLiveApp { client, _ in
            for (headers, query, status) in [
                ([("Last-Event-ID", "abc")], "", 422), ([("Last-Event-ID", "999999999")], "", 410),
                ([], "?types=order.bogus", 422), ([], "?lastEventId=-1", 422),
            ] {
                let answer = try await client.send(
                    method: .GET,
                    path: "/v1/events\(query)",
                    headers: [authorization] + headers
                )
                #expect(answer.status == status, "\(headers) \(query): \(answer.text)")
                #expect(answer.text.contains(#""error""#))
            }
            let anonymous = try await client.send(method: .GET, path: "/v1/events")
            #expect(anonymous.status == 401)
        }
    }
}
