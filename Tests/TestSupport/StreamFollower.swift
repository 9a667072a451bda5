import Foundation
import NIOCore
public import PayNotifyClient
import Synchronization

/// What one follower of an order's stream saw, across all its connections.
public struct FollowRecord: Sendable {
    public let orderID: String
    /// The snapshot's id on the first connection: the follower expects every event after it.
    public var snapshotID: Int64?
    /// The ids of every event after the snapshot, in the order they arrived.
    public var received: [Int64] = []
    public var connections = 0
}

/// A count that several tasks bump and a test waits on.
public final class Counter: Sendable {
    public init() {}

    private let value = Atomic<Int>(0)

    public func increment() { self.value.add(1, ordering: .relaxed) }

    public var count: Int { self.value.load(ordering: .relaxed) }
}

/// Follows an order's stream as a browser's EventSource would, until `finish`: whenever a connection
/// ends early (the server dropped it, the instance went away, a refusal with a 5xx or 429) it
/// reconnects with the last id it received. With `dropAfter` it also hangs up on purpose after a
/// few events, up to `maximumDrops` times, to reconnect while events keep coming.
///
/// - Parameter clients: the instances to connect to, in turn (one, or several behind "nginx").
public func follow(
    _ order: CreatedOrder,
    via clients: [LoopbackHTTPClient],
    dropAfter: ClosedRange<Int>? = nil,
    maximumDrops: Int = 3,
    within timeout: Duration = .seconds(60),
    onSnapshot: @Sendable () -> Void = {}
) async throws -> FollowRecord {
    var record = FollowRecord(orderID: order.id)
    var lastID: String?
    var drops = 0
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let client = clients[record.connections % clients.count]
        record.connections += 1
        let finished: Bool
        do {
            finished = try await client.stream(
                path: order.streamPath,
                headers: lastID.map { [("Last-Event-ID", $0)] } ?? [],
                deadline: .now() + .seconds(30)
            ) { stream in
                if stream.status == 204 { return true }
                guard stream.status == 200 else { return false }
                let dropAt = dropAfter.flatMap { drops < maximumDrops ? Int.random(in: $0) : nil }
                var readHere = 0
                while let event = try await stream.nextEvent() {
                    guard let id = event.logID else { throw UnexpectedAnswer(description: "event without id") }
                    if lastID == nil {
                        record.snapshotID = id
                        onSnapshot()
                    } else {
                        record.received.append(id)
                    }
                    lastID = event.id
                    if event.name == "finish" { return true }
                    readHere += 1
                    if let dropAt, readHere >= dropAt {
                        drops += 1
                        return false
                    }
                }
                return false
            }
        } catch {
            finished = false  // the connection broke: reconnect, as EventSource does
        }
        if finished { return record }
        try await Task.sleep(for: .milliseconds(Int.random(in: 10...100)))
    }
    throw UnexpectedAnswer(description: "no finish for \(order.id) within \(timeout): \(record)")
}

/// Checks a follower got every event of its order's log after its snapshot, once each, in order.
public func expectComplete(_ record: FollowRecord, in database: TestDatabase) async throws -> Bool {
    guard let snapshotID = record.snapshotID else { return false }
    let expected = try await logIDs(of: record.orderID, in: database).filter { $0 > snapshotID }
    return record.received == expected
}

/// One follower to start: its order, the instances it connects to in turn, and whether it hangs
/// up on purpose after a few events (see ``follow(_:via:dropAfter:maximumDrops:within:onSnapshot:)``).
public struct FollowerPlan: Sendable {
    public let order: CreatedOrder
    public let clients: [LoopbackHTTPClient]
    public let dropAfter: ClosedRange<Int>?

    public init(_ order: CreatedOrder, via clients: [LoopbackHTTPClient], dropAfter: ClosedRange<Int>? = nil) {
        self.order = order
        self.clients = clients
        self.dropAfter = dropAfter
    }
}

/// Starts every follower at once, runs `traffic` as soon as all of them have their snapshot, then
/// waits for each to reach `finish` and returns what each saw.
public func following(
    _ plans: [FollowerPlan],
    within timeout: Duration = .seconds(60),
    traffic: @Sendable () async throws -> Void
) async throws -> [FollowRecord] {
    let connected = Counter()
    return try await withThrowingTaskGroup(of: FollowRecord.self) { group in
        for plan in plans {
            group.addTask {
                try await follow(plan.order, via: plan.clients, dropAfter: plan.dropAfter, within: timeout) {
                    connected.increment()
                }
            }
        }
        try await eventually(within: .seconds(30), "\(plans.count) streams open") { connected.count == plans.count }
        try await traffic()
        return try await group.reduce(into: []) { $0.append($1) }
    }
}
