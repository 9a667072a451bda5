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
        /// Told once whether the stream became ready (or failed to).
        var onReady: (@Sendable (Bool) -> Void)?
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
    ///
    /// Driven from the event loops, without a task per connection: each stream that is ready (or
    /// failed) starts the next connection from its own callback. With a task per connection the
    /// load generator spent more CPU than the server it measured while opening streams (it shares
    /// the server's two cores), mostly in switching between its tasks and its event loops.
    public func connectAll(concurrency: Int) async -> (opened: Int, seconds: Double) {
        let started = ContinuousClock.now
        guard !self.members.isEmpty else { return (0, 0) }
        let opened = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
            let progress = Shared((next: 0, finished: 0, opened: 0))
            @Sendable func startNext() {
                let index = progress.withLock { state -> Int? in
                    guard state.next < self.members.count else { return nil }
                    defer { state.next += 1 }
                    return state.next
                }
                guard let index else { return }
                self.connect(self.members[index]) { ready in
                    let done = progress.withLock { state -> Int? in
                        state.finished += 1
                        if ready { state.opened += 1 }
                        return state.finished == self.members.count ? state.opened : nil
                    }
                    if let done {
                        continuation.resume(returning: done)
                    } else {
                        // Queued, not called: a connection that fails at once (no file left)
                        // reports inline, and thousands of them must not nest on one stack.
                        self.target.group.any().execute { startNext() }
                    }
                }
            }
            for _ in 0..<min(concurrency, self.members.count) { startNext() }
        }
        return (opened, (ContinuousClock.now - started) / .seconds(1))
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

    /// Connects one member; `onReady` is told once whether its stream became ready.
    private func connect(_ member: Member, onReady: @escaping @Sendable (Bool) -> Void) {
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
        member.state.withLock { $0.onReady = onReady }
        self.target.streams.connect(
            path: member.order.streamPath,
            headers: lastID.map { [("Last-Event-ID", $0)] } ?? [],
            callbacks: prepared
        ).whenComplete { result in
            switch result {
            case .success(let channel): member.state.withLock { $0.channel = channel }
            case .failure: Self.resume(member, ready: false)
            }
        }
    }

    private static func resume(_ member: Member, ready: Bool) {
        let onReady = member.state.withLock { state in
            defer { state.onReady = nil }
            return state.onReady
        }
        onReady?(ready)
    }
}
