import EventLog
import Foundation
import SSEGateway
import Synchronization
import Testing

private func events(_ order: String, _ ids: ClosedRange<Int64>, finishAt: Int64? = nil) -> [OrderEvent] {
    ids.map {
        OrderEvent(id: $0, orderID: order, name: $0 == finishAt ? "finish" : "status", data: "{}", createdAt: Date())
    }
}

private let roomy = StreamLimits(total: 100, perAddress: 100, perOrder: 100)

extension StreamHub {
    /// A stream whose start put it at `cursor` with nothing more in the log, and whose replay so
    /// had nothing to write, goes live.
    fileprivate func goLive(
        _ subscription: Subscription,
        cursor: Int64,
        sink: any StreamSink,
        now: ContinuousClock.Instant = .now,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) -> GoLive {
        _ = self.startRead(subscription, cursor: cursor, latestEventID: cursor, finishEventID: nil)
        return self.replayFinished(subscription, sink: sink, now: now, onEnd: onEnd)
    }
}

@Suite("StreamHub")
struct StreamHubTests {
    /// Events reach every live stream of their order, in order, once; and no other order's streams.
    @Test func fansOutPerOrder() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10))
        let (first, second, other) = (RecordingSink(), RecordingSink(), RecordingSink())
        // Held, as a session holds its subscription while the stream lives.
        var subscriptions: [StreamHub.Subscription] = []
        for (order, sink) in [("a", first), ("a", second), ("b", other)] {
            subscriptions.append(try hub.subscribe(orderID: order, clientAddress: "1", onOverflow: {}))
            #expect(hub.goLive(subscriptions.last!, cursor: 0, sink: sink, onEnd: { _ in }) == .live)
        }
        defer { withExtendedLifetime(subscriptions) {} }
        hub.publish(events("a", 1...3))
        hub.publish(events("a", 2...4))  // 2 and 3 again: written once
        #expect(first.ids == [1, 2, 3, 4] && second.ids == [1, 2, 3, 4])
        #expect(other.ids.isEmpty)
    }

    /// This instance's own commits go at once to the live streams that have had their predecessor,
    /// and to no other: a stream behind or still replaying gets them from the relay's read of the
    /// log, and nobody gets an event twice.
    @Test func ownCommitsReachTheStreamsInLine() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10))
        let (inLine, behind, replayingSink) = (RecordingSink(), RecordingSink(), RecordingSink())
        let first = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let second = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let replaying = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        defer { withExtendedLifetime((first, second, replaying)) {} }
        #expect(hub.goLive(first, cursor: 5, sink: inLine, onEnd: { _ in }) == .live)
        #expect(hub.goLive(second, cursor: 3, sink: behind, onEnd: { _ in }) == .live)
        hub.publish(CommittedEvents(orderID: "a", predecessor: 5, events: events("a", 6...7)))
        #expect(inLine.ids == [6, 7] && behind.ids.isEmpty)
        #expect(hub.watchedOrders() == ["a": 0])  // the relay still reads from where it was
        // The relay's read of the log, later: the stream behind catches up, nobody twice.
        hub.publish(events("a", 4...7))
        #expect(inLine.ids == [6, 7] && behind.ids == [4, 5, 6, 7])
        #expect(hub.goLive(replaying, cursor: 3, sink: replayingSink, onEnd: { _ in }) == .live)
        #expect(replayingSink.ids == [4, 5, 6, 7])  // held from the relay's publish
        // A commit's finish ends the streams it reaches.
        hub.publish(CommittedEvents(orderID: "a", predecessor: 7, events: events("a", 8...9, finishAt: 9)))
        #expect(inLine.ids == [6, 7, 8, 9] && hub.openStreams == 0)
    }

    /// Events published while a stream replays are held, and written when it goes live: only those
    /// above the cursor its replay reached, and nothing after `finish`, which ends it.
    @Test func replayThenLiveWithoutGapOrDuplicate() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10))
        let subscription = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        hub.publish(events("a", 5...6))  // committed while it replays
        let sink = RecordingSink()
        let ends = Ends()
        // The replay sent up to 5: 6 is written at once, then live ones follow.
        #expect(hub.goLive(subscription, cursor: 5, sink: sink, onEnd: ends.record) == .live)
        defer { withExtendedLifetime(subscription) {} }
        hub.publish(events("a", 7...9, finishAt: 8))
        #expect(sink.ids == [6, 7, 8])
        #expect(ends.all == [.finished])
        #expect(hub.openStreams == 0)
        // A finish held while replaying ends the stream as it goes live.
        let late = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {})
        hub.publish(events("b", 1...2, finishAt: 2))
        let lateSink = RecordingSink()
        #expect(hub.goLive(late, cursor: 0, sink: lateSink, onEnd: { _ in }) == .ended(.finished))
        #expect(lateSink.ids == [1, 2])
    }

    /// A stream whose connection refuses more is dropped and its connection closed; the others are
    /// not held up. A replaying stream that falls more than its buffer behind is dropped too.
    @Test func slowStreamsAreDroppedOthersContinue() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 3))
        let closed = Atomic<Int>(0)
        let slow = try hub.subscribe(orderID: "a", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        let slowSink = RecordingSink(capacity: 1)
        let slowEnds = Ends()
        _ = hub.goLive(slow, cursor: 0, sink: slowSink, onEnd: slowEnds.record)
        let reader = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        defer { withExtendedLifetime((slow, reader)) {} }
        let readerSink = RecordingSink()
        _ = hub.goLive(reader, cursor: 0, sink: readerSink, onEnd: { _ in })
        hub.publish(events("a", 1...1))
        hub.publish(events("a", 2...2))  // the slow one's connection is full: dropped
        hub.publish(events("a", 3...3))
        #expect(closed.load(ordering: .relaxed) == 1 && slowEnds.all == [.dropped])
        #expect(readerSink.ids == [1, 2, 3])
        let replaying = try hub.subscribe(orderID: "a", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        #expect(!hub.startRead(replaying, cursor: 3, latestEventID: 3, finishEventID: nil))
        hub.publish(events("a", 4...6))
        #expect(closed.load(ordering: .relaxed) == 1)
        hub.publish(events("a", 7...7))  // a fourth held event: more than its buffer
        #expect(closed.load(ordering: .relaxed) == 2)
        #expect(hub.goLive(replaying, cursor: 3, sink: RecordingSink(), onEnd: { _ in }) == .ended(.cancelled))
        #expect(hub.droppedStreams == 2 && hub.openStreams == 1)
    }

    /// Reproducer: the relay's first read of an order that had no stream here starts at the
    /// beginning of its log, and a replaying stream held all of it: on a log longer than its buffer
    /// it was dropped for events its own replay reads. Events up to the newest its start read are
    /// no longer held, whether published before that was known or after.
    @Test func eventsTheReplayReadsAreNotHeld() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 3))
        let closed = Atomic<Int>(0)
        let fresh = try hub.subscribe(orderID: "a", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        let early = try hub.subscribe(orderID: "b", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        defer { withExtendedLifetime((fresh, early)) {} }
        #expect(!hub.startRead(fresh, cursor: 100, latestEventID: 100, finishEventID: nil))
        hub.publish(events("a", 1...100))  // the relay, reading the order's log from its start
        hub.publish(events("a", 99...101))
        let freshSink = RecordingSink()
        #expect(hub.goLive(fresh, cursor: 100, sink: freshSink, onEnd: { _ in }) == .live)
        #expect(freshSink.ids == [101])

        hub.publish(events("b", 1...3))  // before the stream's start was read: held
        #expect(!hub.startRead(early, cursor: 3, latestEventID: 3, finishEventID: nil))
        hub.publish(events("b", 4...6))  // three held: within the buffer
        let earlySink = RecordingSink()
        #expect(hub.goLive(early, cursor: 3, sink: earlySink, onEnd: { _ in }) == .live)
        #expect(earlySink.ids == [4, 5, 6])
        #expect(closed.load(ordering: .relaxed) == 0 && hub.droppedStreams == 0)
    }

    /// Reproducer: before a stream's start was read, the relay's first read of its order (from
    /// the beginning of a long log) still overflowed the stream's buffer and dropped it. What
    /// overflows then is let go, and `replayCovers` tells the stream to read the log itself.
    @Test func whatOverflowsBeforeTheStartIsLetGo() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 3))
        let closed = Atomic<Int>(0)
        let stream = try hub.subscribe(orderID: "a", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        defer { withExtendedLifetime(stream) {} }
        hub.publish(events("a", 1...100))
        #expect(closed.load(ordering: .relaxed) == 0 && hub.openStreams == 1)
        #expect(hub.startRead(stream, cursor: 90, latestEventID: 90, finishEventID: nil))
        hub.publish(events("a", 101...101))
        let sink = RecordingSink()
        #expect(hub.goLive(stream, cursor: 100, sink: sink, onEnd: { _ in }) == .live)
        #expect(sink.ids == [101])
        #expect(hub.droppedStreams == 0)
    }

    /// Keepalives go only to live streams the hub wrote nothing to for a heartbeat interval, and a
    /// stream at its maximum age is ended.
    @Test func keepalivesForQuietStreamsAndAnEndAtMaximumAge() throws {
        let start = ContinuousClock.now
        let hub = StreamHub(
            limits: roomy,
            policy: StreamPolicy(bufferSize: 10, heartbeat: .seconds(15), maximumAge: .seconds(60)),
            now: start,
            spreadsTicks: false
        )
        let (quiet, busy) = (RecordingSink(), RecordingSink())
        let ends = Ends()
        let quietSubscription = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {}, now: start)
        let busySubscription = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {}, now: start)
        _ = hub.goLive(quietSubscription, cursor: 0, sink: quiet, now: start, onEnd: ends.record)
        _ = hub.goLive(busySubscription, cursor: 0, sink: busy, now: start, onEnd: ends.record)
        defer { withExtendedLifetime((quietSubscription, busySubscription)) {} }
        hub.tick(now: start + .seconds(10))  // nobody due
        hub.publish(events("b", 1...1), now: start + .seconds(10))
        hub.tick(now: start + .seconds(16))  // only the quiet one
        hub.tick(now: start + .seconds(17))  // nobody: the quiet one just had one
        #expect(quiet.texts == [": keepalive\n\n"])
        #expect(busy.ids == [1] && busy.texts.count == 1)
        hub.tick(now: start + .seconds(61))  // both old: both end
        #expect(ends.all == [.expired, .expired])
        #expect(hub.openStreams == 0)
    }

    /// The hub remembers the newest id delivered per watched order, for re-reading.
    @Test func watchedOrdersTrackTheNewestDelivered() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10))
        let a = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let b = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {})
        hub.publish(events("a", 7...9))
        hub.publish(events("c", 1...1))  // no stream: not watched
        #expect(hub.watchedOrders() == ["a": 9, "b": 0])
        #expect(hub.cursors(for: ["a", "b", "c"]) == ["a": 9, "b": 0])
        hub.unsubscribe(a)
        #expect(hub.watchedOrders() == ["b": 0])
        withExtendedLifetime(b) {}
    }

    /// Positions are what the live streams of an order have (the lowest among them), including what
    /// their replays wrote, which the hub never published; replaying streams do not count.
    @Test func positionsAreWhatLiveStreamsHave() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10))
        let ahead = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let behind = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let replaying = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {})
        defer { withExtendedLifetime((ahead, behind, replaying)) {} }
        _ = hub.goLive(ahead, cursor: 12, sink: RecordingSink(), onEnd: { _ in })
        _ = hub.goLive(behind, cursor: 9, sink: RecordingSink(), onEnd: { _ in })
        #expect(hub.positions(for: ["a", "b", "c"]) == ["a": 9])
        #expect(hub.cursors(for: ["a", "b"]) == ["a": 0, "b": 0])  // nothing published yet
        hub.publish(events("a", 13...13))
        #expect(hub.positions(for: ["a"]) == ["a": 13])
    }

    /// Positions for more orders than one hold of the lock covers: every live order is found,
    /// across the batches, and orders without live streams are left out.
    @Test func positionsOfManyOrders() throws {
        let hub = StreamHub(
            limits: StreamLimits(total: 2_000, perAddress: 2_000, perOrder: 2),
            policy: StreamPolicy(bufferSize: 10)
        )
        let orders = (0..<805).map { "ord_\($0)" }  // more than three holds of the lock (256 each)
        var subscriptions: [StreamHub.Subscription] = []
        for (index, order) in orders.enumerated() where index % 2 == 0 {
            let subscription = try hub.subscribe(orderID: order, clientAddress: "1", onOverflow: {})
            _ = hub.goLive(subscription, cursor: Int64(index), sink: RecordingSink(), onEnd: { _ in })
            subscriptions.append(subscription)
        }
        defer { withExtendedLifetime(subscriptions) {} }
        let expected = Dictionary(
            uniqueKeysWithValues: orders.enumerated().filter { $0.offset % 2 == 0 }.map {
                ($0.element, Int64($0.offset))
            }
        )
        #expect(hub.positions(for: orders + ["ord_missing"]) == expected)
        #expect(hub.positions(for: []) == [:])
    }

    /// Each limit refuses with its own reason, and a stream that ends frees its place.
    @Test func limitsRefuseAndFree() throws {
        let hub = StreamHub(
            limits: StreamLimits(total: 3, perAddress: 2, perOrder: 1),
            policy: StreamPolicy(bufferSize: 10)
        )
        let first = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
        #expect(throws: StreamRefusal.tooManyForOrder) {
            try hub.subscribe(orderID: "a", clientAddress: "y", onOverflow: {})
        }
        let second = try hub.subscribe(orderID: "b", clientAddress: "x", onOverflow: {})
        #expect(throws: StreamRefusal.tooManyFromAddress) {
            try hub.subscribe(orderID: "c", clientAddress: "x", onOverflow: {})
        }
        let third = try hub.subscribe(orderID: "c", clientAddress: "y", onOverflow: {})
        #expect(throws: StreamRefusal.instanceFull) {
            try hub.subscribe(orderID: "d", clientAddress: "z", onOverflow: {})
        }
        hub.unsubscribe(first)
        let again = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
        #expect(hub.openStreams == 3)
        withExtendedLifetime((second, third, again)) {}
    }

    /// A subscription released without ever going live (its response was never written) frees its place.
    @Test func abandonedSubscriptionFreesItsPlace() throws {
        let hub = StreamHub(
            limits: StreamLimits(total: 1, perAddress: 1, perOrder: 1),
            policy: StreamPolicy(bufferSize: 10)
        )
        do {
            _ = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
        }
        #expect(hub.openStreams == 0)
        #expect(hub.watchedOrders().isEmpty)
        _ = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
    }

    /// `end` writes a short `retry:` to a live stream and ends it; a replaying one ends as it goes
    /// live; after close, new streams are refused.
    @Test func endAndClose() throws {
        let hub = StreamHub(limits: roomy, policy: StreamPolicy(bufferSize: 10), shutdownRetry: .milliseconds(250))
        let live = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let sink = RecordingSink()
        let ends = Ends()
        _ = hub.goLive(live, cursor: 0, sink: sink, onEnd: ends.record)
        let replaying = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        hub.end(live)
        hub.end(replaying)
        #expect(sink.texts == ["retry: 250\n\n"] && ends.all == [.shutdown])
        let lateSink = RecordingSink()
        #expect(hub.goLive(replaying, cursor: 0, sink: lateSink, onEnd: { _ in }) == .ended(.shutdown))
        #expect(lateSink.texts == ["retry: 250\n\n"])
        hub.close()
        #expect(throws: StreamRefusal.closed) {
            try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        }
        #expect(hub.openStreams == 0)
    }
}
