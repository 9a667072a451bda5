import EventLog
import Foundation
import Logging
import Payments
import Postgres
import Storage
import Synchronization
import TestSupport
import Testing

/// A running pool on a fresh migrated database, and the store over it.
func withStore<T: Sendable>(
    maximumConnections: Int = 8,
    onCommit: (@Sendable ([CommittedEvents]) -> Void)? = nil,
    onAlert: (@Sendable (Alert) -> Void)? = nil,
    _ body: @Sendable (OrderStore, TestDatabase) async throws -> T
) async throws -> T {
    let database = try await TestDatabase.create(migrated: true)
    // These tests are about what the store writes, not about waiting: a generous wait for a
    // connection, so a busy start of the test run (seconds with every core taken) cannot fail them.
    let pool = ConnectionPool(
        configuration: .init(
            connection: database.configuration,
            maximumConnections: maximumConnections,
            acquireTimeout: .seconds(60)
        ),
        logger: Logger(label: "test")
    )
    return try await withRunning(pool) { pool in
        try await body(OrderStore(pool: pool, notifier: nil, onCommit: onCommit, onAlert: onAlert), database)
    }
}

let price = Money(amount: 1999, currency: "CNY")

func newOrder(merchantOrderID: String? = nil, amount: Int64 = 1999, expiresIn: Int = 900) -> NewOrder {
    NewOrder(
        merchantOrderID: merchantOrderID,
        price: Money(amount: amount, currency: "CNY"),
        provider: .sandbox,
        description: "Order",
        metadata: #"{"cart": 7}"#,
        expiresIn: expiresIn
    )
}

func delivery(_ id: String, order: String?, _ kind: PaymentEvent.Kind, paid: Money? = price) -> WebhookDelivery {
    WebhookDelivery(
        provider: .sandbox,
        eventID: id,
        eventType: "payment.\(kind)",
        orderReference: order,
        event: PaymentEvent(kind: kind, paid: kind == .succeeded ? paid : nil),
        rawBody: Array(#"{"id":"\#(id)"}"#.utf8)
    )
}

func created(_ outcome: OrderStore.CreateOutcome) -> Order {
    switch outcome {
    case .created(let order), .replayed(let order): order
    }
}

/// The event names of an order's log, in id order.
private func events(_ database: TestDatabase, _ orderID: String) async throws -> [String] {
    try await database.withConnection { connection in
        try connection.query("SELECT event FROM order_events WHERE order_id = $1 ORDER BY id", [orderID]).map {
            try $0.decode(String.self, at: 0)
        }
    }
}

/// The ids of an order's log, in order.
private func eventIDs(_ database: TestDatabase, _ orderID: String) async throws -> [Int64] {
    try await database.withConnection { connection in
        try connection.query("SELECT id FROM order_events WHERE order_id = $1 ORDER BY id", [orderID]).map {
            try $0.decode(Int64.self, at: 0)
        }
    }
}

/// What the store handed to `onCommit`.
private final class Handed: Sendable {
    private let runs = Mutex<[CommittedEvents]>([])

    func record(_ runs: [CommittedEvents]) { self.runs.withLock { $0 += runs } }

    var all: [CommittedEvents] { self.runs.withLock { $0 } }
}

/// Raised once, from any thread.
private final class Flag: Sendable {
    private let raised = Atomic<Bool>(false)

    func raise() { self.raised.store(true, ordering: .releasing) }

    var isRaised: Bool { self.raised.load(ordering: .acquiring) }
}

/// The orders each NOTIFY named, in arrival order.
private final class Announced: Sendable {
    private let payloads = Mutex<[[String]]>([])

    func record(_ orders: [String]) { self.payloads.withLock { $0.append(orders) } }

    var all: [[String]] { self.payloads.withLock { $0 } }
}

func count(_ database: TestDatabase, _ sql: String, _ parameters: [String] = []) async throws -> Int {
    try await database.withConnection { try $0.query(sql, parameters).first!.decode(Int.self, at: 0) }
}

@Suite("OrderStore against a real PostgreSQL")
struct OrderStoreTests {
    /// A new order is pending, with an unguessable id and one `status` event in its log.
    @Test func createsAnOrderWithItsFirstEvent() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "a", count: 64))
            )
            #expect(order.status == .pending)
            #expect(order.id.hasPrefix("ord_") && order.id.count == 30)
            #expect(order.price == price)
            #expect(order.expiresAt.timeIntervalSince(order.createdAt) > 899)
            #expect(try await events(database, order.id) == ["status"])
            #expect(try await store.order(id: order.id) == order)
            #expect(try await store.order(id: "ord_nosuchorder00000000000000") == nil)
        }
    }

    /// The same Idempotency-Key and request return the first order; with another request they are refused.
    @Test func idempotencyKeyReturnsTheFirstOrder() async throws {
        try await withStore { store, _ in
            let hash = String(repeating: "b", count: 64)
            let first = try await store.create(newOrder(), idempotencyKey: "key-1", requestHash: hash)
            let again = try await store.create(newOrder(), idempotencyKey: "key-1", requestHash: hash)
            guard case .created(let order) = first, case .replayed(let replayed) = again else {
                Issue.record("expected created then replayed, got \(first), \(again)")
                return
            }
            #expect(order.id == replayed.id)
            await #expect(throws: OrderStoreError.idempotencyKeyReused) {
                try await store.create(
                    newOrder(amount: 5),
                    idempotencyKey: "key-1",
                    requestHash: String(repeating: "c", count: 64)
                )
            }
        }
    }

    /// A key that appended a merchant event is not a create's, even with the same request hash,
    /// and the other way round: one namespace, and each kind replays only its own.
    @Test func aKeyServesOneKindOfRequest() async throws {
        try await withStore { store, _ in
            let hash = String(repeating: "e", count: 64)
            let order = created(try await store.create(newOrder(), idempotencyKey: "made-order", requestHash: hash))
            let appended = try await store.appendMerchantEvent(
                orderID: order.id,
                name: "ticket.issued",
                data: "{}",
                idempotency: ("made-event", hash)
            )
            #expect(!appended.replayed)
            await #expect(throws: OrderStoreError.idempotencyKeyReused) {
                try await store.create(newOrder(), idempotencyKey: "made-event", requestHash: hash)
            }
            await #expect(throws: OrderStoreError.idempotencyKeyReused) {
                try await store.appendMerchantEvent(
                    orderID: order.id,
                    name: "ticket.issued",
                    data: "{}",
                    idempotency: ("made-order", hash)
                )
            }
        }
    }

    /// Concurrent creates with one Idempotency-Key make one order, whatever the database's default
    /// isolation (at REPEATABLE READ a create that waited for the key's lock would not see the
    /// order made meanwhile).
    @Test(arguments: ["read committed", "repeatable read"])
    func concurrentRetriesMakeOneOrder(defaultIsolation: String) async throws {
        try await withStore { store, database in
            let name = database.name
            try await database.withConnection { connection in
                try connection.execute(
                    "ALTER DATABASE \"\(name)\" SET default_transaction_isolation = '\(defaultIsolation)'"
                )
            }
            let hash = String(repeating: "d", count: 64)
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        created(try await store.create(newOrder(), idempotencyKey: "race", requestHash: hash)).id
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            #expect(try await count(database, "SELECT count(*) FROM orders") == 1)
        }
    }

    /// A reused merchant_order_id with the same request is a retry; with a different one it is refused.
    @Test func merchantOrderIDReuse() async throws {
        try await withStore { store, _ in
            let hash = String(repeating: "e", count: 64)
            let first = created(
                try await store.create(newOrder(merchantOrderID: "m-42"), idempotencyKey: nil, requestHash: hash)
            )
            let retry = try await store.create(
                newOrder(merchantOrderID: "m-42"),
                idempotencyKey: nil,
                requestHash: hash
            )
            #expect(retry == .replayed(first))
            await #expect(throws: OrderStoreError.merchantOrderIDReused) {
                try await store.create(
                    newOrder(merchantOrderID: "m-42", amount: 1),
                    idempotencyKey: nil,
                    requestHash: String(repeating: "f", count: 64)
                )
            }
        }
    }

    /// Fifty concurrent identical deliveries record one inbox row and append one event pair.
    @Test func concurrentIdenticalDeliveriesMakeOneEvent() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "1", count: 64))
            )
            let outcomes = try await withThrowingTaskGroup(of: OrderStore.DeliveryOutcome.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await store.record(delivery("evt_same", order: order.id, .succeeded)) }
                }
                return try await group.reduce(into: [OrderStore.DeliveryOutcome]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .applied }.count == 1)
            #expect(outcomes.filter { $0 == .duplicate }.count == 49)
            #expect(try await events(database, order.id) == ["status", "status", "finish"])
            #expect(try await count(database, "SELECT count(*) FROM webhook_inbox") == 1)
            #expect(try await store.order(id: order.id)?.status == .succeeded)
        }
    }

    /// Succeeded, then a late processing, then succeeded again (new ids): succeeded, one finish.
    @Test func outOfOrderDeliveriesEndSucceededWithOneFinish() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "2", count: 64))
            )
            #expect(try await store.record(delivery("evt_1", order: order.id, .succeeded)) == .applied)
            #expect(try await store.record(delivery("evt_2", order: order.id, .processing)) == .noChange)
            #expect(try await store.record(delivery("evt_3", order: order.id, .succeeded)) == .noChange)
            #expect(try await store.record(delivery("evt_4", order: order.id, .failed)) == .contradiction)
            #expect(try await store.order(id: order.id)?.status == .succeeded)
            #expect(try await events(database, order.id) == ["status", "status", "finish"])
            #expect(try await count(database, "SELECT count(*) FROM webhook_inbox") == 4)
            #expect(try await count(database, "SELECT count(*) FROM alerts WHERE kind = 'contradiction'") == 1)
        }
    }

    /// A success paying the wrong amount leaves the order unpaid and records a mismatch alert.
    @Test func mismatchLeavesTheOrderUnpaidWithAnAlert() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "3", count: 64))
            )
            let cheap = Money(amount: 1, currency: "CNY")
            #expect(
                try await store.record(delivery("evt_cheap", order: order.id, .succeeded, paid: cheap)) == .mismatch
            )
            #expect(try await store.order(id: order.id)?.status == .pending)
            #expect(try await events(database, order.id) == ["status"])
            #expect(
                try await count(
                    database,
                    "SELECT count(*) FROM alerts WHERE kind = 'amount_mismatch' AND order_id = $1",
                    [order.id]
                ) == 1
            )
            #expect(try await count(database, "SELECT count(*) FROM webhook_inbox WHERE outcome = 'mismatch'") == 1)
        }
    }

    /// Reproducer: a delivery from another provider than the order's never settles it (a sandbox
    /// secret must not be able to pay a Stripe order); it is recorded as a mismatch with an alert.
    @Test func deliveryFromAnotherProviderIsRefused() async throws {
        try await withStore { store, database in
            var stripeOrder = newOrder()
            stripeOrder.provider = .stripe
            let order = created(
                try await store.create(stripeOrder, idempotencyKey: nil, requestHash: String(repeating: "8", count: 64))
            )
            let outcome = try await store.record(delivery("evt_cross", order: order.id, .succeeded))
            #expect(outcome == .mismatch)
            #expect(try await store.order(id: order.id)?.status == .pending)
            #expect(try await count(database, "SELECT count(*) FROM alerts WHERE kind = 'provider_mismatch'") == 1)
            #expect(try await events(database, order.id) == ["status"])
        }
    }

    /// An unknown order is recorded with an alert and answered, so the provider stops retrying.
    @Test func unknownOrderIsRecorded() async throws {
        try await withStore { store, database in
            let outcome = try await store.record(delivery("evt_x", order: "ord_unknown", .succeeded))
            #expect(outcome == .unknownOrder)
            #expect(try await store.record(delivery("evt_x", order: "ord_unknown", .succeeded)) == .duplicate)
            #expect(try await count(database, "SELECT count(*) FROM alerts WHERE kind = 'unknown_order'") == 1)
        }
    }

    /// Every alert the store raises, on its own or in a delivery's transaction, is handed over once
    /// committed, as the ops stream shows it (the same text as reading it by id); a duplicate
    /// delivery raises none.
    @Test func raisedAlertsAreHandedOverOnceCommitted() async throws {
        let raised = Mutex<[Alert]>([])
        let onAlert: @Sendable (Alert) -> Void = { alert in raised.withLock { $0.append(alert) } }
        try await withStore(onAlert: onAlert) { store, database in
            try await store.recordAlert(kind: "bad_signature", provider: .sandbox, orderID: nil, message: "forged")
            #expect(try await store.record(delivery("evt_y", order: "ord_unknown", .succeeded)) == .unknownOrder)
            #expect(try await store.record(delivery("evt_y", order: "ord_unknown", .succeeded)) == .duplicate)
            let alerts = raised.withLock { $0 }
            #expect(alerts.count == 2)
            for alert in alerts { #expect(try await store.alert(id: alert.id) == alert) }
            #expect(alerts.map { $0.data.contains(#""kind": "bad_signature""#) } == [true, false])
            #expect(alerts.last?.data.contains(#""kind": "unknown_order""#) == true)
            #expect(try await count(database, "SELECT count(*) FROM alerts") == 2)
        }
    }

    /// Progress appends an event without changing the status; the merchant's id finds the order too.
    @Test func progressAndMerchantReference() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(
                    newOrder(merchantOrderID: "shop-9"),
                    idempotencyKey: nil,
                    requestHash: String(repeating: "4", count: 64)
                )
            )
            var progress = delivery("evt_p", order: "shop-9", .progress)
            progress = WebhookDelivery(
                provider: .sandbox,
                eventID: progress.eventID,
                eventType: progress.eventType,
                orderReference: progress.orderReference,
                event: PaymentEvent(kind: .progress, percent: 40, stage: "scanning"),
                rawBody: progress.rawBody
            )
            #expect(try await store.record(progress) == .applied)
            #expect(try await store.order(id: order.id)?.status == .pending)
            let data = try await database.withConnection { connection in
                try connection.query("SELECT data::text FROM order_events WHERE event = 'progress'").first!.decode(
                    String.self,
                    at: 0
                )
            }
            #expect(data.contains(#""percent": 40"#) && data.contains(#""stage": "scanning""#))
        }
    }

    /// Stale pending orders expire once, even with two sweepers at work together.
    @Test func expiryHappensOnceWithTwoSweepers() async throws {
        try await withStore { store, database in
            var ids: [String] = []
            for index in 0..<20 {
                let order = try await store.create(
                    newOrder(expiresIn: 1),
                    idempotencyKey: nil,
                    requestHash: String(repeating: "5", count: 63) + String(index % 10)
                )
                ids.append(created(order).id)
            }
            let fresh = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "6", count: 64))
            )
            try await Task.sleep(for: .milliseconds(1100))
            let expired = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 { group.addTask { try await store.expireDueOrders(limit: 100) } }
                return try await group.reduce(0, +)
            }
            #expect(expired == 20)
            #expect(try await store.expireDueOrders(limit: 100) == 0)
            #expect(try await store.order(id: fresh.id)?.status == .pending)
            #expect(try await count(database, "SELECT count(*) FROM order_events WHERE event = 'finish'") == 20)
            #expect(try await store.order(id: ids[0])?.status == .expired)
        }
    }

    /// A merchant cancels a pending order once; events on a final order are refused.
    @Test func merchantCancelAndEvents() async throws {
        try await withStore { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "7", count: 64))
            )
            _ = try await store.appendMerchantEvent(
                orderID: order.id,
                name: "ticket.reserved",
                data: #"{"seat": "12A"}"#
            )
            #expect(try await store.cancel(orderID: order.id).status == .canceled)
            #expect(try await store.cancel(orderID: order.id).status == .canceled)
            await #expect(throws: OrderStoreError.orderFinished(.canceled)) {
                try await store.appendMerchantEvent(orderID: order.id, name: "ticket.issued", data: "{}")
            }
            await #expect(throws: OrderStoreError.orderNotFound) { try await store.cancel(orderID: "ord_missing") }
            #expect(try await events(database, order.id) == ["status", "ticket.reserved", "status", "finish"])
        }
    }

    /// Each committed append is handed over with the id before it in the order's log, so a stream
    /// that has had that id can take it at once: the runs chain, and are exactly the log.
    @Test func commitsAreHandedOverWithTheirPredecessors() async throws {
        let handed = Handed()
        try await withStore(onCommit: handed.record) { store, database in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "8", count: 64))
            )
            _ = try await store.appendMerchantEvent(orderID: order.id, name: "ticket.reserved", data: "{}")
            #expect(try await store.record(delivery("evt_p", order: order.id, .processing)) == .applied)
            #expect(try await store.record(delivery("evt_p", order: order.id, .processing)) == .duplicate)
            #expect(try await store.record(delivery("evt_s", order: order.id, .succeeded)) == .applied)
            #expect(try await store.record(delivery("evt_late", order: order.id, .processing)) == .noChange)
            let log = try await eventIDs(database, order.id)
            let runs = handed.all
            #expect(runs.map { $0.events.map(\.name) } == [["ticket.reserved"], ["status"], ["status", "finish"]])
            #expect(runs.map(\.predecessor) == [log[0], log[1], log[2]])
            #expect(runs.flatMap { $0.events.map(\.id) } == Array(log.dropFirst()))
            #expect(runs.allSatisfy { $0.orderID == order.id })
        }
    }

    /// The predecessor is read after the order's lock is taken, whatever the database's default
    /// isolation: at REPEATABLE READ the snapshot would predate an append that committed while the
    /// transaction waited for the lock, and a stream handed the new event would skip that one.
    @Test func predecessorIsTheLogAsTheLockFoundIt() async throws {
        let handed = Handed()
        try await withStore(onCommit: handed.record) { store, database in
            let name = database.name
            try await database.withConnection { connection in
                try connection.execute(
                    "ALTER DATABASE \"\(name)\" SET default_transaction_isolation = 'repeatable read'"
                )
            }
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "9", count: 64))
            )
            // Another transaction takes the order's lock and appends; the delivery then waits for it.
            let locked = Flag()
            async let held: Int64 = database.withConnection { connection in
                try connection.transaction { connection in
                    _ = try connection.query("SELECT id FROM orders WHERE id = $1 FOR UPDATE", [order.id])
                    let id = try connection.query(
                        "INSERT INTO order_events (order_id, event, data) VALUES ($1, 'ticket.held', '{}') RETURNING id",
                        [order.id]
                    ).first!.decode(Int64.self, at: 0)
                    locked.raise()
                    for _ in 0..<200 {
                        Thread.sleep(forTimeInterval: 0.02)
                        let waiting = try connection.query("SELECT count(*) FROM pg_locks WHERE NOT granted").first!
                        if try waiting.decode(Int.self, at: 0) > 0 { break }
                    }
                    return id
                }
            }
            while !locked.isRaised { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try await store.record(delivery("evt_p", order: order.id, .processing)) == .applied)
            let heldID = try await held
            #expect(handed.all.last?.predecessor == heldID)
        }
    }

    /// Orders announced within the notifier's interval after a NOTIFY go out together in the next
    /// one: every NOTIFY wakes every instance's listener and relay, so their rate is bounded
    /// whatever the webhooks' (BENCHMARKS.md, item 18).
    @Test func announcementsWithinTheIntervalShareOneNotify() async throws {
        let database = try await TestDatabase.create(migrated: true)
        let logger = Logger(label: "test")
        let pool = ConnectionPool(
            configuration: .init(connection: database.configuration, maximumConnections: 1),
            logger: logger
        )
        let listener = NotificationListener(
            configuration: .init(connection: database.configuration, channels: [OrderStore.notificationChannel]),
            logger: logger
        )
        let announced = Announced()
        let listening = Flag()
        let notifier = ChangeNotifier(pool: pool, minimumInterval: .seconds(1), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            group.addTask { try await listener.run() }
            group.addTask { try await notifier.run() }
            group.addTask {
                for await event in listener.events {
                    switch event {
                    case .gap: listening.raise()
                    case .notification(let notification):
                        announced.record(Announcement(payload: notification.payload)?.orderIDs ?? [])
                    }
                }
            }
            defer { group.cancelAll() }
            try await eventually("listening") { listening.isRaised }
            notifier.announce(["ord_a"])
            try await eventually("the first NOTIFY") { announced.all == [["ord_a"]] }
            notifier.announce(["ord_b"])
            try await Task.sleep(for: .milliseconds(100))
            notifier.announce(["ord_c"])
            try await eventually("the second NOTIFY") { announced.all.count == 2 }
            #expect(announced.all == [["ord_a"], ["ord_b", "ord_c"]])
        }
    }
}
