import Foundation
import OrderStore
import SSEGateway
import Synchronization
import Testing

private func events(_ order: String, _ ids: ClosedRange<Int64>) -> [OrderEvent] {
    ids.map { OrderEvent(id: $0, orderID: order, name: "status", data: "{}", createdAt: Date()) }
}

/// Reads what a stream holds now, without waiting for more: everything buffered up to its end.
private func drain(_ subscription: StreamHub.Subscription) async -> [StreamSignal] {
    var signals: [StreamSignal] = []
    for await signal in subscription.signals { signals.append(signal) }
    return signals
}

private func ids(_ signals: [StreamSignal]) -> [Int64] {
    signals.compactMap { if case .event(let event) = $0 { event.id } else { nil } }
}

private let roomy = StreamLimits(total: 100, perAddress: 100, perOrder: 100)

@Suite("StreamHub")
struct StreamHubTests {
    /// Events reach every stream of their order, in order, and no other order's streams.
    @Test func fansOutPerOrder() async throws {
        let hub = StreamHub(bufferSize: 10, limits: roomy)
        let first = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let second = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let other = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {})
        #expect(hub.openStreams == 3)
        hub.publish(events("a", 1...3))
        hub.close()
        #expect(ids(await drain(first)) == [1, 2, 3])
        #expect(ids(await drain(second)) == [1, 2, 3])
        #expect(await drain(other).isEmpty)
    }

    /// A stream whose buffer is full is dropped and its connection closed; the others are not held up.
    @Test func slowStreamIsDroppedOthersContinue() async throws {
        let hub = StreamHub(bufferSize: 3, limits: roomy)
        let closed = Atomic<Int>(0)
        let slow = try hub.subscribe(orderID: "a", clientAddress: "1") { closed.add(1, ordering: .relaxed) }
        hub.publish(events("a", 1...2))
        let reader = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let third = events("a", 3...3)
        hub.publish(third)
        hub.tick(now: .now + .seconds(16))  // the slow stream's fourth signal: no room
        #expect(closed.load(ordering: .relaxed) == 1)
        #expect(hub.droppedStreams == 1)
        #expect(ids(await drain(slow)) == [1, 2, 3])
        #expect(hub.openStreams == 1)
        hub.unsubscribe(reader)
        #expect(await drain(reader) == [.event(third[0]), .tick])
    }

    /// Ticks go only to streams the hub handed nothing for a heartbeat interval, or that are too old.
    @Test func ticksOnlyForQuietOrOldStreams() async throws {
        let start = ContinuousClock.now
        let hub = StreamHub(
            bufferSize: 10,
            limits: roomy,
            heartbeat: .seconds(15),
            maximumAge: .seconds(60),
            now: start,
            spreadsTicks: false
        )
        let quiet = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {}, now: start)
        let busy = try hub.subscribe(orderID: "b", clientAddress: "1", onOverflow: {}, now: start)
        hub.tick(now: start + .seconds(10))  // nobody due
        hub.publish(events("b", 1...1), now: start + .seconds(10))
        hub.tick(now: start + .seconds(16))  // only the quiet one
        hub.tick(now: start + .seconds(17))  // nobody: the quiet one was just ticked
        hub.tick(now: start + .seconds(61))  // both old: both
        hub.close()
        #expect(await drain(quiet) == [.tick, .tick])
        let busySignals = await drain(busy)
        #expect(ids(busySignals) == [1])
        #expect(busySignals.count == 2 && busySignals.last == .tick)
    }

    /// The hub remembers the newest id delivered per watched order, for re-reading after a gap.
    @Test func watchedOrdersTrackTheNewestDelivered() throws {
        let hub = StreamHub(bufferSize: 10, limits: roomy)
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

    /// Each limit refuses with its own reason, and a stream that ends frees its place.
    @Test func limitsRefuseAndFree() throws {
        let hub = StreamHub(bufferSize: 10, limits: StreamLimits(total: 3, perAddress: 2, perOrder: 1))
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

    /// A subscription released without ever being read (its response was never written) frees its place.
    @Test func abandonedSubscriptionFreesItsPlace() throws {
        let hub = StreamHub(bufferSize: 10, limits: StreamLimits(total: 1, perAddress: 1, perOrder: 1))
        do {
            _ = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
        }
        #expect(hub.openStreams == 0)
        #expect(hub.watchedOrders().isEmpty)
        _ = try hub.subscribe(orderID: "a", clientAddress: "x", onOverflow: {})
    }

    /// `end` asks one stream to stop; after close, every stream has ended and new ones are refused.
    @Test func endAndClose() async throws {
        let hub = StreamHub(bufferSize: 10, limits: roomy)
        let ending = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        let open = try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        hub.end(ending)
        hub.close()
        #expect(await drain(ending) == [.end])
        #expect(await drain(open).isEmpty)
        #expect(throws: StreamRefusal.closed) {
            try hub.subscribe(orderID: "a", clientAddress: "1", onOverflow: {})
        }
        #expect(hub.openStreams == 0)
    }
}
