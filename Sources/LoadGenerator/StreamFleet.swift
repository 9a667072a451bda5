import Foundation
import NIOCore
public import PayNotifyClient
import Synchronization

/// Many order streams held open at once, one per order, each remembering what it received: the
/// ids (to count losses and duplicates) and the last id (to reconnect with Last-Event-ID).
public final class StreamFleet: Sendable {
    public final class Member: Sendable {
        public let order: Target.Order
        fileprivate let state = Shared(MemberState())

        init(order: Target.Order) {
            self.order = order
        }

        /// Ids of every event received after the first snapshot, in arrival order, across connections.
        public var receivedIDs: [Int64] { self.state.withLock { $0.received } }
    }

    fileprivate struct MemberState {
        var channel: (any Channel)?
        /// Resumed when the stream is ready (or failed to be).
        var waiter: CheckedContinuation<Bool, Never>?
        var lastID: String?
        var received: [Int64] = []
    }

    public let members: [Member]
    private let target: Target
    /// Told of every event after the snapshot: which member, the event, when it arrived.
    private let onEvent: @Sendable (Member, EventStreamParser.Event, ContinuousClock.Instant) -> Void

    public init(
        target: Target,
        orders: [Target.Order],
        onEvent: @escaping @Sendable (Member, EventStreamParser.Event, ContinuousClock.Instant) -> Void = { _, _, _ in }
    ) {
        self.target = target
        self.members = orders.map(Member.init)
        self.onEvent = onEvent
    }

    /// Connects every member, `concurrency` at a time, each counted open once it is ready: on a
    /// first connection when its snapshot arrived, on a reconnection (with Last-Event-ID) when the
    /// server's `retry:` did. Returns how many opened and how long it took.
    public func connectAll(concurrency: Int) async -> (opened: Int, seconds: Double) {
        let next = SharedCounter()
        let opened = SharedCounter()
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, self.members.count) {
                group.addTask {
                    while true {
                        let index = next.increment()
                        guard index < self.members.count else { return }
                        if await self.connect(self.members[index]) { opened.increment() }
                    }
                }
            }
        }
        return (opened.value, (ContinuousClock.now - started) / .seconds(1))
    }

    /// Hangs up every member's connection at once and waits until they are closed.
    public func disconnectAll() async {
        let channels = self.members.compactMap { member in
            member.state.withLock { state in
                defer { state.channel = nil }
                return state.channel
            }
        }
        for channel in channels { channel.close(promise: nil) }
        for channel in channels { try? await channel.closeFuture.get() }
    }

    /// How many ids arrived more than once, in all members.
    public var duplicates: Int {
        self.members.reduce(0) { count, member in
            let ids = member.receivedIDs
            return count + ids.count - Set(ids).count
        }
    }

    private func connect(_ member: Member) async -> Bool {
        let lastID = member.state.withLock { $0.lastID }
        let reconnecting = lastID != nil
        var callbacks = StreamCallbacks()
        callbacks.opened = { status in
            if status != 200 { Self.resume(member, ready: false) }
        }
        callbacks.received = { item in
            switch item {
            case .retry:
                if reconnecting { Self.resume(member, ready: true) }
            case .comment:
                break
            case .event(let event):
                let now = ContinuousClock.now
                let firstSnapshot = member.state.withLock { state in
                    defer { state.lastID = event.id }
                    guard state.lastID != nil, let id = event.id.flatMap({ Int64($0) }) else { return true }
                    state.received.append(id)
                    return false
                }
                if firstSnapshot {
                    Self.resume(member, ready: true)
                } else {
                    self.onEvent(member, event, now)
                }
            }
        }
        callbacks.closed = { Self.resume(member, ready: false) }
        let prepared = callbacks
        return await withCheckedContinuation { continuation in
            member.state.withLock { $0.waiter = continuation }
            Task {
                do {
                    let channel = try await self.target.streams.open(
                        path: member.order.streamPath,
                        headers: lastID.map { [("Last-Event-ID", $0)] } ?? [],
                        callbacks: prepared
                    )
                    member.state.withLock { $0.channel = channel }
                } catch {
                    Self.resume(member, ready: false)
                }
            }
        }
    }

    private static func resume(_ member: Member, ready: Bool) {
        let waiter = member.state.withLock { state in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: ready)
    }
}
