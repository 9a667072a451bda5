import Foundation
public import Logging
public import OrderStore
public import Postgres
public import ServiceLifecycle

/// Turns the listener's notifications into deliveries: reads the order's new events from the log
/// (the log is the truth; a notification only says "look") and publishes them to the hub; reads
/// announced alerts and broadcasts them to the ops streams; and ticks the hub every second for
/// heartbeats and stream ages.
///
/// One task publishes, so the events of an order reach its streams in id order. After every
/// listener gap (first connect, reconnect, or a consumer that fell behind) it re-reads, for every
/// order with open streams, the events after the last id delivered there: a notification lost
/// while the listener was down costs a little latency, never an event.
///
/// A failed read is retried with backoff until it succeeds or the service stops; meanwhile new
/// notifications wait in the listener's bounded buffer (an overflow there becomes a gap).
public struct Relay: Service {
    private let notifications: AsyncStream<NotificationListener.Event>
    private let store: OrderStore
    private let hub: StreamHub
    private let ops: OpsFeed
    private let tickInterval: Duration
    private let logger: Logger

    public init(
        notifications: AsyncStream<NotificationListener.Event>,
        store: OrderStore,
        hub: StreamHub,
        ops: OpsFeed,
        tickInterval: Duration = .seconds(1),
        logger: Logger
    ) {
        self.notifications = notifications
        self.store = store
        self.hub = hub
        self.ops = ops
        self.tickInterval = tickInterval
        self.logger = logger
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tickUntilCancelled() }
            await cancelWhenGracefulShutdown {
                var gaps = 0
                for await event in self.notifications {
                    switch event {
                    case .gap:
                        gaps += 1
                        await self.resynchronise(afterReconnect: gaps > 1)
                    case .notification(let notification) where notification.channel == OrderStore.notificationChannel:
                        await self.relay(notification)
                    case .notification(let notification) where notification.channel == OrderStore.alertChannel:
                        await self.broadcastAlert(notification)
                    case .notification:
                        continue
                    }
                }
            }
            group.cancelAll()
        }
    }

    // MARK: Order events

    private func relay(_ notification: NotificationListener.Notification) async {
        guard let announcement = Announcement(payload: notification.payload) else {
            self.logger.warning("unreadable order_events payload", metadata: ["payload": "\(notification.payload)"])
            return
        }
        guard let delivered = self.hub.lastDelivered(orderID: announcement.orderID) else { return }
        if let events = announcement.events {
            let fresh = events.filter { $0.id > delivered }
            if !fresh.isEmpty { self.hub.publish(fresh) }
            return
        }
        // With nothing delivered to this order yet, its streams replayed the log themselves after
        // registering, and the events before this transaction's were announced (and relayed)
        // earlier: read from its first event. Announcements of one order arrive in commit order,
        // which is id order.
        var after = delivered > 0 ? delivered : announcement.firstEventID - 1
        while let page = await self.retrying(
            "read order events",
            {
                try await self.store.events(orderID: announcement.orderID, after: after, limit: Self.pageSize)
            }
        ) {
            if !page.isEmpty { self.hub.publish(page) }
            guard page.count == Self.pageSize, let last = page.last else { return }
            after = last.id
        }
    }

    /// Events read from the log per order and query.
    private static let pageSize = 500

    /// Re-reads the log of every watched order from the last id delivered to it.
    private func resynchronise(afterReconnect: Bool) async {
        var cursors = self.hub.watchedOrders()
        let watched = cursors.count
        while !cursors.isEmpty {
            let batch = Dictionary(uniqueKeysWithValues: cursors.prefix(1000).map { ($0.key, $0.value) })
            guard
                let events = await self.retrying(
                    "re-read order events",
                    {
                        try await self.store.events(after: batch, limitPerOrder: Self.pageSize)
                    }
                )
            else { return }
            for key in batch.keys { cursors[key] = nil }
            for (orderID, orderEvents) in Dictionary(grouping: events, by: \.orderID) {
                self.hub.publish(orderEvents)
                if orderEvents.count == Self.pageSize, let last = orderEvents.last { cursors[orderID] = last.id }
            }
        }
        guard afterReconnect else { return }
        self.logger.notice("listener reconnected; streams re-read the log", metadata: ["orders": "\(watched)"])
        self.ops.publish(
            Self.localAlert(
                kind: "listener_regained",
                message: "The LISTEN connection was lost and is back; \(watched) watched orders re-read the log."
            )
        )
    }

    // MARK: Alerts and ticks

    private func broadcastAlert(_ notification: NotificationListener.Notification) async {
        guard let id = Int64(notification.payload) else { return }
        guard let alert = await self.retrying("read alert", { try await self.store.alert(id: id) }) ?? nil else {
            return
        }
        self.ops.publish(ServerSentEvent(id: String(alert.id), event: "alert", data: alert.data))
    }

    private func tickUntilCancelled() async {
        var dropped = self.hub.droppedStreams
        while (try? await Task.sleep(for: self.tickInterval)) != nil {
            self.hub.tick()
            let nowDropped = self.hub.droppedStreams
            if nowDropped > dropped {
                self.ops.publish(
                    Self.localAlert(
                        kind: "slow_client_dropped",
                        message:
                            "\(nowDropped - dropped) streams did not read and were closed; they resume on reconnect."
                    )
                )
                dropped = nowDropped
            }
        }
    }

    /// An alert about this instance alone (not stored: it is not about an order or a payment).
    static func localAlert(kind: String, message: String) -> ServerSentEvent {
        let fields = ["kind": kind, "message": message, "created_at": ISO8601DateFormatter().string(from: Date())]
        let data = (try? JSONEncoder().encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ServerSentEvent(event: "alert", data: data)
    }

    /// Runs `body` until it succeeds, waiting 50 ms, then twice as long each time up to 5 s;
    /// `nil` once the task is cancelled.
    private func retrying<T: Sendable>(_ what: String, _ body: () async throws -> T) async -> T? {
        var delay = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                return try await body()
            } catch {
                self.logger.warning("\(what) failed; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                guard (try? await Task.sleep(for: delay)) != nil else { return nil }
                delay = min(delay * 2, .seconds(5))
            }
        }
        return nil
    }
}
