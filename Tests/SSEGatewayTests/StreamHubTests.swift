import SSEGateway
import Testing

private func events(_ order: String, _ ids: ClosedRange<Int64>) -> [OrderEvent] {
    ids.map { OrderEvent(id: $0, orderID: order, name: "status", data: "{}") }
}

/// Reads what a stream holds now, without waiting for more: everything buffered up to its end.
private func drain(_ subscription: StreamHub.Subscription) async -> [Int64] {
    var ids: [Int64] = []
    for await event in subscription.events { ids.append(event.id) }
    return ids
}

@Suite("StreamHub")
struct StreamHubTests {
    /// Events reach every stream of their order, in order, and no other order's streams.
    @Test func fansOutPerOrder() async {
        let hub = StreamHub(bufferSize: 10)
        let first = hub.subscribe(orderID: "a")
        let second = hub.subscribe(orderID: "a")
        let other = hub.subscribe(orderID: "b")
        #expect(hub.openStreams == 3)
        #expect(hub.publish(events("a", 1...3)) == 0)
        hub.close()
        #expect(await drain(first) == [1, 2, 3])
        #expect(await drain(second) == [1, 2, 3])
        #expect(await drain(other) == [])
    }

    /// A stream whose buffer is full is dropped (it will resume with Last-Event-ID); the others are not held up.
    @Test func slowStreamIsDroppedOthersContinue() async {
        let hub = StreamHub(bufferSize: 3)
        let slow = hub.subscribe(orderID: "a")
        #expect(hub.publish(events("a", 1...3)) == 0)
        #expect(hub.publish(events("a", 4...4)) == 1)
        #expect(await drain(slow) == [1, 2, 3])
        #expect(hub.openStreams == 0)
        let fresh = hub.subscribe(orderID: "a")
        #expect(hub.publish(events("a", 5...5)) == 0)
        hub.unsubscribe(fresh)
        #expect(await drain(fresh) == [5])
    }

    /// The hub remembers the newest id delivered per watched order, for re-reading after a gap.
    @Test func watchedOrdersTrackTheNewestDelivered() {
        let hub = StreamHub(bufferSize: 10)
        let a = hub.subscribe(orderID: "a")
        // A subscription nobody holds ends at once (its stream's termination unregisters it).
        let b = hub.subscribe(orderID: "b")
        hub.publish(events("a", 7...9))
        hub.publish(events("c", 1...1))  // no stream: not watched
        #expect(hub.watchedOrders() == ["a": 9, "b": 0])
        hub.unsubscribe(a)
        #expect(hub.watchedOrders() == ["b": 0])
        withExtendedLifetime(b) {}
    }

    /// After close, every stream has ended and new ones end at once.
    @Test func closeEndsEverything() async {
        let hub = StreamHub(bufferSize: 10)
        let open = hub.subscribe(orderID: "a")
        hub.close()
        #expect(await drain(open) == [])
        let late = hub.subscribe(orderID: "a")
        #expect(await drain(late) == [])
        #expect(hub.openStreams == 0)
    }
}
