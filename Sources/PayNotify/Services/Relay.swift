import EventLog
import Foundation
import Logging
import Postgres
import SSEGateway
import ServiceLifecycle
import Storage
import Synchronization

/// Turns the listener's notifications into deliveries: reads the announced orders' new events from
/// the log (the log is the truth; a notification only says "look") and publishes them to the hub;
/// reads announced alerts and broadcasts them to the ops streams; and ticks the hub every second
/// for heartbeats and stream ages.
///
/// Notifications are gathered as they arrive into what there is to do (the set of announced
/// orders, the alerts, whether everything must be re-read), and one task does it: so a burst of
/// notifications for one order costs one read, and the events of an order reach its streams in id
/// order (each read starts after the last id delivered there).
///
/// Everything watched is re-read from the last id delivered to it after every listener gap (first
/// connect, reconnect, a consumer that fell behind). Every `recoveryInterval` another task asks
/// the log which orders gained events since a few intervals ago and hands over, as if announced,
/// the watched ones holding events not yet delivered, so a notification lost on the way (the
/// instance that committed died before its NOTIFY) costs that much latency, never an event; every
/// ``fullRecoveryEvery`` intervals it checks everything watched, for the rare transaction that
/// stayed uncommitted longer than the look-back. Neither check holds up deliveries. A failed read
/// is retried with backoff until it succeeds or the service stops.
struct Relay: Service {
    private let notifications: AsyncStream<NotificationListener.Event>
    private let store: OrderStore
    private let hub: StreamHub
    private let ops: OpsFeed
    private let tickInterval: Duration
    private let recoveryInterval: Duration
    /// Called on every notification and gap: something may have committed elsewhere (the merchant
    /// webhook dispatcher looks for new messages then).
    private let onNotification: @Sendable () -> Void
    private let logger: Logger

    init(
        notifications: AsyncStream<NotificationListener.Event>,
        store: OrderStore,
        hub: StreamHub,
        ops: OpsFeed,
        tickInterval: Duration = .milliseconds(20),
        recoveryInterval: Duration = .seconds(5),
        onNotification: @escaping @Sendable () -> Void = {},
        logger: Logger
    ) {
        self.notifications = notifications
        self.store = store
        self.hub = hub
        self.ops = ops
        self.tickInterval = tickInterval
        self.recoveryInterval = recoveryInterval
        self.onNotification = onNotification
        self.logger = logger
    }

    /// What there is to do, gathered while the relay was busy.
    private struct Work: Sendable {
        var announced: Set<String> = []
        var alerts: [Int64] = []
        /// Re-read every watched order: a gap, or too much announced to track.
        var rereadAll = false
        var gaps = 0

        /// Past this many announced orders, re-reading everything watched is cheaper to track.
        static let maximumAnnounced = 100_000
    }

    func run() async throws {
        let work = Gathered()
        let (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tickUntilCancelled() }
            group.addTask {
                for await event in self.notifications {
                    work.withLock { Self.gather(event, into: &$0) }
                    ring.yield()
                    self.onNotification()
                }
                ring.finish()
            }
            group.addTask {
                // Off the delivery path: it only finds orders with undelivered events, and hands
                // them over as if they had been announced.
                var lookBack = LookBack()
                var rounds = 0
                // From here on, anything committed is above this id (or found by a full check).
                if let newest = try? await self.store.newestEventID() { lookBack.record(newest) }
                while (try? await Task.sleep(for: self.recoveryInterval)) != nil {
                    rounds += 1
                    let behind = await self.ordersBehind(full: rounds % Self.fullRecoveryEvery == 0, &lookBack)
                    guard !behind.isEmpty else { continue }
                    work.withLock { $0.announced.formUnion(behind) }
                    ring.yield()
                }
            }
            await cancelWhenGracefulShutdown {
                var reconnects = -1  // the first gap is the first connect
                for await _ in doorbell {
                    let next = work.withLock { work in
                        defer { work = Work() }
                        return work
                    }
                    if next.rereadAll {
                        await self.reread(self.hub.watchedOrders())
                    } else if !next.announced.isEmpty {
                        await self.reread(self.hub.cursors(for: next.announced))
                    }
                    for id in next.alerts { await self.broadcastAlert(id: id) }
                    if next.gaps > 0 {
                        reconnects += next.gaps
                        if reconnects > 0 { self.listenerRegained() }
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// The work the listener's events and the clock leave for the relay's task.
    private final class Gathered: Sendable {
        private let work = Mutex(Work())

        func withLock<T: Sendable>(_ body: (inout Work) -> T) -> T { self.work.withLock { body(&$0) } }
    }

    private static func gather(_ event: NotificationListener.Event, into work: inout Work) {
        switch event {
        case .gap:
            work.gaps += 1
            work.rereadAll = true
        case .notification(let notification) where notification.channel == OrderStore.notificationChannel:
            guard let announcement = Announcement(payload: notification.payload) else {
                // An instance of another version, perhaps: the periodic re-read covers it.
                work.rereadAll = true
                return
            }
            work.announced.formUnion(announcement.orderIDs)
            if work.announced.count > Work.maximumAnnounced {
                work.announced = []
                work.rereadAll = true
            }
        case .notification(let notification) where notification.channel == OrderStore.alertChannel:
            if let id = Int64(notification.payload) { work.alerts.append(id) }
        case .notification:
            break
        }
    }

    // MARK: Order events

    /// Events read from the log per order and query, and orders per query.
    private static let pageSize = 500
    private static let ordersPerRead = 1000

    /// Reads each order's log after its cursor (the last id delivered to its streams) and
    /// publishes what is new.
    private func reread(_ cursors: [String: Int64]) async {
        var cursors = cursors
        while !cursors.isEmpty {
            let batch = Self.takeBatch(from: &cursors)
            guard
                let events = await self.retrying(
                    "read order events",
                    { try await self.store.events(after: batch, limitPerOrder: Self.pageSize) }
                )
            else { return }
            for (orderID, orderEvents) in Dictionary(grouping: events, by: \.orderID) {
                self.hub.publish(orderEvents)
                if orderEvents.count == Self.pageSize, let last = orderEvents.last { cursors[orderID] = last.id }
            }
        }
    }

    /// Takes up to ``ordersPerRead`` orders out of `cursors`: what one query reads or checks.
    private static func takeBatch(from cursors: inout [String: Int64]) -> [String: Int64] {
        let batch = Dictionary(uniqueKeysWithValues: cursors.prefix(Self.ordersPerRead).map { ($0.key, $0.value) })
        for key in batch.keys { cursors[key] = nil }
        return batch
    }

    /// How many recovery intervals pass between full re-reads of everything watched.
    static let fullRecoveryEvery = 12

    /// The log's newest id at each of the last few recovery checks: a check looks at events above
    /// the oldest, so a transaction that committed up to that many intervals after it took its id
    /// (ids are taken at insert, visible at commit) is still seen.
    private struct LookBack {
        var newest: [Int64] = []
        static let intervals = 4

        var from: Int64? { self.newest.first }

        mutating func record(_ id: Int64) {
            self.newest.append(max(id, self.newest.last ?? id))
            if self.newest.count > Self.intervals { self.newest.removeFirst() }
        }
    }

    /// Watched orders whose logs hold events the hub has not delivered: among those that gained
    /// events since the look-back's oldest id, or, on a `full` check, among everything watched.
    private func ordersBehind(full: Bool, _ lookBack: inout LookBack) async -> Set<String> {
        var behind: Set<String> = []
        if let from = lookBack.from {
            if let changed = await self.retrying(
                "look for unannounced events",
                { try await self.store.ordersWithEvents(after: from) }
            ) {
                lookBack.record(changed.values.max() ?? from)
                // Compared with what the live streams have, not with what the relay published:
                // a stream that just went live has its replay, which the relay never published.
                for (orderID, position) in self.hub.positions(for: changed.keys)
                where changed[orderID, default: 0] > position {
                    behind.insert(orderID)
                }
            }
        } else if let newest = await self.retrying("read the newest event id", { try await self.store.newestEventID() })
        {
            lookBack.record(newest)
        }
        if full {
            var cursors = self.hub.watchedOrders()
            while !cursors.isEmpty {
                let batch = Self.takeBatch(from: &cursors)
                guard
                    let found = await self.retrying(
                        "check watched orders",
                        { try await self.store.ordersBehind(batch) }
                    )
                else { break }
                behind.formUnion(found)
            }
        }
        if !behind.isEmpty {
            // Usually events whose NOTIFY is still on its way; after a crash elsewhere, lost ones.
            self.logger.debug("orders with undelivered events", metadata: ["orders": "\(behind.count)"])
        }
        return behind
    }

    private func listenerRegained() {
        let watched = self.hub.openStreams
        self.logger.notice("listener reconnected; streams re-read the log", metadata: ["streams": "\(watched)"])
        self.ops.publish(
            Self.localAlert(
                kind: "listener_regained",
                message: "The LISTEN connection was lost and is back; \(watched) open streams re-read the log."
            )
        )
    }

    // MARK: Alerts and ticks

    /// Publishes another instance's alert (this instance's own went out at commit: the feed
    /// knows it).
    private func broadcastAlert(id: Int64) async {
        guard !self.ops.hasPublished(alertID: id),
            let alert = await self.retrying("read alert", { try await self.store.alert(id: id) }) ?? nil
        else {
            return
        }
        self.ops.publish(alert)
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
