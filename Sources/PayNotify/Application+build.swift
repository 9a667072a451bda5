import Crypto
import EventLog
public import Foundation
public import Hummingbird
public import Logging
import MerchantWebhooks
import PaymentProviders
import Payments
import Postgres
import ProviderAPIs
import SSEGateway
import Storage
import StreamingHTTP

/// Applies pending migrations, then assembles the whole service from its configuration: the
/// database pool, the listener, the gateway and the HTTP routes. `paynotify serve` runs what
/// this returns; the tests build the very same application.
///
/// Services start in dependency order and stop in reverse: pool, the notifier's pool and the
/// notifier, listener, relay, expiry sweeper, ops stats, then the HTTP server (whose streams end
/// first, each with a short `retry:`; the notifier sends what is left after the server stopped).
///
/// - Parameter now: wall-clock time for webhook timestamp windows and stream tokens (tests inject theirs).
public func buildApplication(
    configuration: AppConfiguration,
    logger: Logger? = nil,
    now: @escaping @Sendable () -> Date = { Date() }
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "paynotify")
    logger.logLevel = configuration.log.level

    // Before any service starts: the expiry sweeper and the relay query the schema at once.
    if configuration.database.migrateOnStart {
        let migrator = Migrator(
            migrations: try Schema.migrations(directory: configuration.database.migrationsDirectory),
            logger: logger
        )
        _ = try await migrator.migrate(configuration.database.connection)
    }

    let pool = ConnectionPool(
        configuration: .init(
            connection: configuration.database.connection,
            maximumConnections: configuration.database.poolSize,
            acquireTimeout: configuration.database.acquireTimeout
        ),
        logger: logger
    )
    let listener = NotificationListener(
        configuration: .init(
            connection: configuration.database.listenConnection,
            channels: [OrderStore.notificationChannel, OrderStore.alertChannel]
        ),
        logger: logger
    )

    // NOTIFY goes out on a connection of its own, off the webhooks' commit path (ChangeNotifier).
    let notifierPool = ConnectionPool(
        configuration: .init(connection: configuration.database.connection, maximumConnections: 1),
        logger: logger
    )
    let notifier = ChangeNotifier(pool: notifierPool, logger: logger)
    // The relay reads the log on a connection of its own too: behind a queue of webhooks waiting
    // for the main pool, every delivery would wait as well.
    let relayPool = ConnectionPool(
        configuration: .init(connection: configuration.database.connection, maximumConnections: 1),
        logger: logger
    )
    // Merchant webhook delivery claims and records on connections of its own, for the same
    // reason: sharing the main pool, it stalled whenever webhooks kept that pool busy (make bench:
    // almost nothing delivered while 500 webhooks/s came in, then the backlog drained after).
    let deliveryPool = ConnectionPool(
        configuration: .init(
            connection: configuration.database.connection,
            maximumConnections: 4,
            acquireTimeout: configuration.database.acquireTimeout
        ),
        logger: logger
    )
    // The reconciler asks providers and records what they say on connections of its own: a slow
    // provider holds them for no longer than a statement, and webhooks never wait behind it.
    let reconcilePool = ConnectionPool(
        configuration: .init(
            connection: configuration.database.connection,
            maximumConnections: 2,
            acquireTimeout: configuration.database.acquireTimeout
        ),
        logger: logger
    )
    let adapters = configuration.providers.adapters
    let tokens = StreamTokenSigner(secret: configuration.security.streamSecret)
    let streamSettings = StreamSettings(retry: configuration.streams.retry)
    let metrics = ServiceMetrics(
        providers: adapters.keys.map(\.rawValue).sorted(),
        webhookOutcomes: WebhookController.outcomes,
        streamRefusals: StreamsController.refusalReasons,
        reconciled: configuration.reconciliation.providers.map(\.rawValue)
    )
    let latency = DeliveryLatency(observer: { metrics.delivered(after: $0) })
    let hub = StreamHub(
        limits: configuration.limits,
        policy: configuration.streams.policy,
        writer: ChannelBatchWriter(),
        onDelivered: { latency.record(Date().timeIntervalSince($0.createdAt)) }
    )
    let ops = OpsFeed(limit: configuration.limits.total, writer: ChannelBatchWriter())
    // This instance's own commits reach its streams at once, and its alerts its ops streams; the
    // NOTIFY tells the others (and the relay here, which reads the log and fills in whatever a
    // stream did not get this way, and leaves the alerts already published).
    // Merchant webhooks: the outbox's messages are written with the events; the dispatcher is
    // woken by this instance's commits and by the notifications of everyone's.
    let dispatcherSignals = DispatcherSignals()
    // Merchant event streams read the log when anything may have committed, as the dispatcher does.
    let feedDoorbell = FeedDoorbell(limit: 100)
    let onCommit: @Sendable ([CommittedEvents]) -> Void = { committed in
        for run in committed { hub.publish(run) }
        dispatcherSignals.eventsCommitted()
        feedDoorbell.ring()
    }
    let store = OrderStore(pool: pool, notifier: notifier, onCommit: onCommit, onAlert: { ops.publish($0) })
    let webhookSettings = configuration.merchantWebhooks
    let sender = WebhookSender(
        settings: .init(
            policy: AddressPolicy(allowed: webhookSettings.allowedAddresses),
            allowHTTP: webhookSettings.allowHTTP,
            timeout: webhookSettings.timeout,
            additionalTrustRoots: webhookSettings.trustRoots,
            connectionsPerHost: webhookSettings.maximumInFlight
        )
    )
    let merchantWebhooks = MerchantWebhookStore(pool: pool, onAlert: { ops.publish($0) })
    let reconciliation = configuration.reconciliation
    let providerHTTP = ProviderHTTP(logger: logger)
    var providerClients: [Provider: any ProviderClient] = [:]
    providerClients[.wechatpay] = reconciliation.wechatPay.map {
        WeChatPayClient(configuration: $0, http: providerHTTP)
    }
    providerClients[.alipay] = reconciliation.alipay.map { AlipayClient(configuration: $0, http: providerHTTP) }
    providerClients[.stripe] = reconciliation.stripe.map { StripeClient(configuration: $0, http: providerHTTP) }
    let reconcilerWakeup = Wakeup()
    let webhookCounters = WebhookCounters()

    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: JSONErrorMiddleware())
    HealthController(pool: pool, listener: listener).addRoutes(to: router)
    MetricsController(
        metrics: metrics,
        hub: hub,
        ops: ops,
        pool: pool,
        listener: listener,
        merchantWebhooks: merchantWebhooks,
        orders: store,
        reconciled: configuration.reconciliation.providers
    ).addRoutes(to: router)
    StreamsController(
        streams: OrderStreams(hub: hub, log: store, settings: streamSettings),
        ops: ops,
        tokens: tokens,
        adminTokenDigest: configuration.security.adminToken.map { Array(SHA256.hash(data: Array($0.utf8))) },
        settings: streamSettings,
        origins: configuration.security.allowedOrigins,
        addresses: ClientAddressResolver(trustedProxies: configuration.security.trustedProxies),
        replayDeadline: configuration.http.idleTimeout,
        metrics: metrics,
        now: now
    ).addRoutes(to: router)
    let api = router.group("/v1")
    let webhooks = WebhookController(
        adapters: adapters,
        store: store,
        maximumBodyBytes: configuration.http.maximumBodyBytes,
        now: now,
        counters: webhookCounters,
        metrics: metrics
    )
    webhooks.addRoutes(to: api)
    let orders = OrdersController(
        store: store,
        tokens: tokens,
        configuredProviders: Set(adapters.keys),
        maximumBodyBytes: configuration.http.maximumBodyBytes,
        reconciled: Set(providerClients.keys),
        firstQueryAfter: reconciliation.rules.after[0],
        reconcilerWakeup: reconcilerWakeup
    )
    let merchantAPI = api.group().add(middleware: MerchantAuthMiddleware(apiKeys: configuration.security.apiKeys))
    orders.addRoutes(to: merchantAPI)
    WebhookEndpointsController(
        store: merchantWebhooks,
        sender: sender,
        signals: dispatcherSignals,
        maximumBodyBytes: configuration.http.maximumBodyBytes
    ).addRoutes(to: merchantAPI)
    MerchantEventsController(
        store: store,
        doorbell: feedDoorbell,
        retry: configuration.streams.retry,
        heartbeat: configuration.streams.policy.heartbeat
    ).addRoutes(to: merchantAPI)
    var sandbox = DeliverySimulator.Credentials()
    sandbox.sandboxSecret = configuration.providers.sandboxSecrets.first
    DemoController(
        enabled: configuration.demo,
        orders: orders,
        webhooks: webhooks,
        store: store,
        simulator: DeliverySimulator(credentials: sandbox),
        maximumBodyBytes: configuration.http.maximumBodyBytes,
        emulatorURL: configuration.demo ? configuration.demoEmulatorURL : nil,
        now: now
    ).addRoutes(to: router)
    try PagesController(emulatorURL: configuration.demo ? configuration.demoEmulatorURL : nil).addRoutes(to: router)

    let responder = router.buildResponder()
    let serverName = "paynotify"
    var app = Application(
        responder: responder,
        // Closes connections that send nothing, or headers a trickle at a time, for this long
        // (Hummingbird never counts a request being answered, such as a stream, as idle).
        server: .streamingHTTP1(
            configuration: .init(idleTimeout: .init(configuration.http.idleTimeout)),
            streams: StreamRequests(
                matches: StreamsController.isStreamRequest,
                responder: responder,
                serverName: serverName,
                logger: logger
            )
        ),
        configuration: .init(
            address: .hostname(configuration.http.host, port: configuration.http.port),
            serverName: serverName,
            backlog: listenBacklog
        ),
        logger: logger
    )
    app.addServices(
        pool,
        notifierPool,
        notifier,
        listener,
        relayPool,
        deliveryPool,
        reconcilePool,
        Relay(
            notifications: listener.events,
            store: OrderStore(pool: relayPool, notifier: nil),
            hub: hub,
            ops: ops,
            recoveryInterval: configuration.streams.recoveryInterval,
            onNotification: {
                dispatcherSignals.eventsCommitted()
                feedDoorbell.ring()
            },
            logger: logger
        ),
        ExpirySweeper(
            store: store,
            interval: configuration.expirySweepInterval,
            batchSize: 500,
            reconciled: Array(providerClients.keys),
            logger: logger
        ),
        Reconciler(
            clients: providerClients,
            http: providerHTTP,
            store: OrderStore(
                pool: reconcilePool,
                notifier: notifier,
                onCommit: onCommit,
                onAlert: { ops.publish($0) }
            ),
            settings: .init(
                rules: reconciliation.rules,
                closeNotBefore: [.wechatpay: reconciliation.wechatPayCloseAfter],
                concurrency: 32,
                // A query and a close, each up to three attempts of 10 s with pauses between.
                lease: .seconds(90),
                idleCheck: .seconds(1)
            ),
            wakeup: reconcilerWakeup,
            metrics: metrics,
            logger: logger,
            now: now
        ),
        WebhookDispatcher(
            store: MerchantWebhookStore(pool: deliveryPool, onAlert: { ops.publish($0) }),
            sender: sender,
            settings: .init(
                schedule: webhookSettings.schedule,
                perEndpoint: webhookSettings.perEndpoint,
                maximumInFlight: webhookSettings.maximumInFlight,
                // Longer than an attempt can take (the timeout bounds the request; recording it is
                // one short transaction), so a live instance's attempt is not claimed twice; short
                // enough that a killed instance's messages go out again within half a minute.
                lease: webhookSettings.timeout + .seconds(10),
                disableAfter: webhookSettings.disableAfter,
                idleCheck: .seconds(5)
            ),
            signals: dispatcherSignals,
            metrics: metrics,
            logger: logger,
            now: now
        ),
        OpsStatsReporter(
            ops: ops,
            hub: hub,
            latency: latency,
            webhooks: webhookCounters,
            listener: listener,
            merchantWebhooks: merchantWebhooks,
            instance: "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)",
            interval: .seconds(1)
        )
    )
    logger.info(
        "configured",
        metadata: [
            "database": "\(configuration.database.connection)",
            "providers": "\(adapters.keys.map(\.rawValue).sorted().joined(separator: ","))",
            // Which providers are asked when a callback does not come; the others are webhook-only.
            "reconciled": "\(providerClients.keys.map(\.rawValue).sorted().joined(separator: ","))",
        ]
    )
    return app
}

/// The listening socket's queue of connections not yet accepted: as long as the kernel allows
/// (Linux caps it at `net.core.somaxconn`, 4096 by default). When every checkout page reconnects
/// at once (an nginx reload, a network blip, a restarted instance) the handshakes arrive faster
/// than the event loops accept them; with Hummingbird's default of 256 the kernel dropped
/// thousands of them, and each dropped client waited a second or three to retry its SYN
/// (BENCHMARKS.md, reconnect).
let listenBacklog = 65_535
