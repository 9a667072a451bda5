import Logging
import Postgres
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing

/// Collects what a listener emits, from a task of its own, for the test to inspect.
final class EventRecorder: Sendable {
    private let events = Mutex<[NotificationListener.Event]>([])

    var all: [NotificationListener.Event] { self.events.withLock { $0 } }
    var gaps: Int { self.all.filter { $0 == .gap }.count }
    var payloads: [String] {
        self.all.compactMap {
            guard case .notification(let notification) = $0 else { return nil }
            return notification.payload
        }
    }

    func record(_ stream: AsyncStream<NotificationListener.Event>) async {
        for await event in stream {
            self.events.withLock { $0.append(event) }
        }
    }
}

/// Runs the listener and records its events while `body` runs; both stop when it returns.
private func withRecordingListener(
    _ listener: NotificationListener,
    _ body: @Sendable (EventRecorder) async throws -> Void
) async throws {
    let recorder = EventRecorder()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await listener.run() }
        group.addTask { await recorder.record(listener.events) }
        defer { group.cancelAll() }
        try await body(recorder)
    }
}

@Suite("NotificationListener against a real PostgreSQL")
struct NotificationListenerTests {
    private func makeListener(_ configuration: ConnectionConfiguration, channel: String) -> NotificationListener {
        NotificationListener(
            configuration: .init(
                connection: configuration,
                channels: [channel],
                backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200))
            ),
            logger: Logger(label: "test")
        )
    }

    private func notify(_ database: TestDatabase, channel: String, _ payload: String) async throws {
        try await database.withConnection { try $0.execute("SELECT pg_notify($1, $2)", [channel, payload]) }
    }

    /// A NOTIFY from another connection arrives, after the initial gap.
    @Test func receivesNotificationsFromAnotherConnection() async throws {
        let database = try await TestDatabase.create()
        let channel = "Orders Channel"  // needs quoting as an identifier
        let listener = self.makeListener(database.configuration, channel: channel)
        try await withRecordingListener(listener) { recorder in
            try await eventually("the first gap") { recorder.gaps == 1 }
            #expect(listener.isListening)
            try await self.notify(database, channel: channel, "order 1 · 支付")
            try await self.notify(database, channel: "another channel", "not for us")
            try await self.notify(database, channel: channel, "order 2")
            try await eventually("two notifications") { recorder.payloads.count == 2 }
            #expect(recorder.payloads == ["order 1 · 支付", "order 2"])
            #expect(recorder.all.first == .gap)
        }
    }

    /// After its backend is terminated the listener reconnects by itself, reports a gap, and hears again.
    @Test func reconnectsAfterItsBackendIsTerminated() async throws {
        let applicationName = "listener-\(UInt32.random(in: 0...UInt32.max))"
        let database = try await TestDatabase.create(applicationName: applicationName)
        let listener = self.makeListener(database.configuration, channel: "events")
        try await withRecordingListener(listener) { recorder in
            try await eventually("listening") { recorder.gaps == 1 }
            let terminated = try await database.withConnection { connection in
                try connection.query(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                    [applicationName]
                ).count
            }
            #expect(terminated == 1)
            try await eventually("the gap after reconnecting") { recorder.gaps == 2 && listener.isListening }
            try await self.notify(database, channel: "events", "after the gap")
            try await eventually("a notification after reconnecting") { recorder.payloads == ["after the gap"] }
            #expect(recorder.all == [.gap, .gap, recorder.all.last!])
        }
    }

    /// While the server is down the listener keeps retrying; when it returns, a gap says so.
    @Test func survivesADatabaseRestart() async throws {
        let cluster = try await TestCluster.start()
        let listener = self.makeListener(try ConnectionConfiguration(cluster.url), channel: "events")
        try await withRecordingListener(listener) { recorder in
            try await eventually("listening") { listener.isListening }
            try await cluster.stop()
            try await eventually("the listener to notice") { !listener.isListening }
            try await cluster.restart()
            try await eventually(within: .seconds(20), "listening again") { listener.isListening && recorder.gaps == 2 }
            try await TestThreads.withConnection(try ConnectionConfiguration(cluster.url)) {
                try $0.execute("NOTIFY events, 'back'")
            }
            try await eventually("a notification after the restart") { recorder.payloads == ["back"] }
        }
    }

    /// Graceful shutdown stops the listener promptly and ends its event stream.
    @Test func gracefulShutdownEndsTheStream() async throws {
        let database = try await TestDatabase.create()
        let listener = self.makeListener(database.configuration, channel: "events")
        let recorder = EventRecorder()
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run() }
                group.addTask { await recorder.record(listener.events) }
                try await eventually("listening") { listener.isListening }
                trigger.triggerGracefulShutdown()
                // Both tasks end: run() returns and the stream finishes, so the recorder's loop ends.
                try await group.waitForAll()
            }
        }
        #expect(!listener.isListening)
        #expect(recorder.all == [.gap])
    }
}
