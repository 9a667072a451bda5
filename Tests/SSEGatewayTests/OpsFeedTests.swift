import EventLog
import SSEGateway
import Synchronization
import Testing

/// Stands for an event loop: the group a sink is written with.
private final class Lane: Sendable {}

/// Groups sinks by their lane, and notes any broadcast handed sinks of more than one lane.
private final class LaneWriter: StreamBatchWriter {
    let lanes: [ObjectIdentifier: Lane]
    private let mixed = Mutex(false)

    init(lanes: [ObjectIdentifier: Lane]) {
        self.lanes = lanes
    }

    func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int> {
        OneSinkAtATime().send(writes)
    }

    func group(of sink: any StreamSink) -> ObjectIdentifier? {
        self.lanes[ObjectIdentifier(sink as AnyObject)].map(ObjectIdentifier.init)
    }

    func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    ) {
        if Set(sinks.map { self.group(of: $0) }).count > 1 { self.mixed.withLock { $0 = true } }
        OneSinkAtATime().broadcast(text, to: sinks, paced: paced, refused: refused)
    }

    var handedMixedGroups: Bool { self.mixed.withLock { $0 } }
}

@Suite("OpsFeed")
struct OpsFeedTests {
    private let alert = ServerSentEvent(event: "alert", data: "{}")

    /// Streams go live and leave in any order (first, middle and last of their groups); each
    /// broadcast reaches every live stream once, none that left, and hands the writer one group at
    /// a time.
    @Test func broadcastsReachEachLiveStreamOnce() throws {
        let lanes = [Lane(), Lane(), Lane()]
        let sinks = (0..<30).map { _ in RecordingSink() }
        let writer = LaneWriter(
            lanes: Dictionary(uniqueKeysWithValues: sinks.enumerated().map { (ObjectIdentifier($1), lanes[$0 % 3]) })
        )
        let feed = OpsFeed(limit: 100, writer: writer)
        var subscriptions: [OpsFeed.Subscription] = []
        for sink in sinks {
            subscriptions.append(try feed.subscribe(onOverflow: {}))
            let live = feed.goLive(subscriptions.last!, sink: sink, onEnd: { _ in })
            #expect(live)
        }
        defer { withExtendedLifetime(subscriptions) {} }
        let gone: Set<Int> = [0, 1, 2, 13, 14, 27, 28, 29]
        for index in gone.sorted(by: { ($0 * 7) % 30 < ($1 * 7) % 30 }) { feed.unsubscribe(subscriptions[index]) }
        feed.publish(self.alert)
        let late = RecordingSink()
        subscriptions.append(try feed.subscribe(onOverflow: {}))
        let lateIsLive = feed.goLive(subscriptions.last!, sink: late, onEnd: { _ in })
        #expect(lateIsLive)
        feed.publish(self.alert)

        for (index, sink) in sinks.enumerated() {
            #expect(sink.texts.count == (gone.contains(index) ? 0 : 2), "stream \(index)")
        }
        #expect(late.texts.count == 1)
        #expect(feed.openStreams == 30 - gone.count + 1)
        #expect(!writer.handedMixedGroups)
    }

    /// A stored alert goes out once, whether this instance's commit or the NOTIFY brings it first;
    /// the feed remembers the last 1,024.
    @Test func anAlertGoesOutOnce() throws {
        let feed = OpsFeed(limit: 10)
        let sink = RecordingSink()
        let subscription = try feed.subscribe(onOverflow: {})
        defer { withExtendedLifetime(subscription) {} }
        let live = feed.goLive(subscription, sink: sink, onEnd: { _ in })
        #expect(live)
        feed.publish(Alert(id: 7, data: "{}"))
        #expect(feed.hasPublished(alertID: 7) && !feed.hasPublished(alertID: 8))
        feed.publish(Alert(id: 7, data: "{}"))
        feed.publish(Alert(id: 8, data: "{}"))
        #expect(sink.ids == [7, 8])
        for id in Int64(100)..<1124 { feed.publish(Alert(id: id, data: "{}")) }
        #expect(!feed.hasPublished(alertID: 7) && !feed.hasPublished(alertID: 8))
        #expect(feed.hasPublished(alertID: 100) && feed.hasPublished(alertID: 1123))
    }

    /// A stream whose client does not read is closed and ended as dropped; the others go on.
    @Test func aStreamThatDoesNotReadIsDropped() throws {
        let feed = OpsFeed(limit: 10)
        let (reader, stuck) = (RecordingSink(), RecordingSink(capacity: 1))
        // `onOverflow` is noted as one more `.dropped`.
        let (overflows, ends) = (Ends(), Ends())
        let subscriptions = [
            try feed.subscribe(onOverflow: {}),
            try feed.subscribe(onOverflow: { overflows.record(.dropped) }),
        ]
        defer { withExtendedLifetime(subscriptions) {} }
        let live = [
            feed.goLive(subscriptions[0], sink: reader, onEnd: { _ in }),
            feed.goLive(subscriptions[1], sink: stuck, onEnd: ends.record),
        ]
        #expect(live == [true, true])
        for _ in 0..<3 { feed.publish(self.alert) }

        #expect(reader.texts.count == 3 && stuck.texts.count == 1)
        #expect(overflows.all == [.dropped] && ends.all == [.dropped])
        #expect(feed.openStreams == 1)
    }
}
