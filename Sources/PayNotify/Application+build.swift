public import Foundation
public import Hummingbird
public import Logging
import OrderStore
import PaymentProviders
import Payments
import Postgres

/// Assembles the whole service from its configuration: the database pool, the listener, the HTTP
/// routes and, before the server accepts a request, the migrations. `paynotify serve` runs what
/// this returns; the tests build the very same application.
///
/// Services start in dependency order and stop in reverse: pool, listener, expiry sweeper, then the
/// HTTP server.
///
/// - Parameter now: wall-clock time for webhook timestamp windows and stream tokens (tests inject theirs).
public func buildApplication(
    configuration: AppConfiguration,
    logger: Logger? = nil,
    now: @escaping @Sendable () -> Date = { Date() }
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "paynotify")
    logger.logLevel = configuration.logLevel

    let pool = ConnectionPool(
        configuration: .init(
            connection: configuration.database,
            maximumConnections: configuration.poolSize,
            acquireTimeout: configuration.acquireTimeout
        ),
        logger: logger
    )
    let listener = NotificationListener(
        configuration: .init(
            connection: configuration.database,
            channels: [OrderStore.notificationChannel, OrderStore.alertChannel]
        ),
        logger: logger
    )

    let store = OrderStore(pool: pool)
    let adapters = try webhookAdapters(configuration)

    let router = Router()
    router.add(middleware: JSONErrorMiddleware())
    HealthController(pool: pool, listener: listener).addRoutes(to: router)
    let api = router.group("/v1")
    WebhookController(adapters: adapters, store: store, maximumBodyBytes: configuration.maximumBodyBytes, now: now)
        .addRoutes(to: api)
    OrdersController(
        store: store,
        tokens: StreamTokenSigner(secret: configuration.streamSecret),
        configuredProviders: Set(adapters.keys),
        maximumBodyBytes: configuration.maximumBodyBytes
    ).addRoutes(to: api.group().add(middleware: MerchantAuthMiddleware(apiKeys: configuration.apiKeys)))

    var app = Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "paynotify"
        ),
        logger: logger
    )
    app.addServices(
        pool,
        listener,
        ExpirySweeper(store: store, interval: configuration.expirySweepInterval, batchSize: 500, logger: logger)
    )
    if configuration.migrateOnStart {
        let migrator = Migrator(
            migrations: try Migration.load(from: URL(fileURLWithPath: configuration.migrationsDirectory)),
            logger: logger
        )
        app.beforeServerStarts {
            _ = try await migrator.migrate(configuration.database)
        }
    }
    logger.info(
        "configured",
        metadata: [
            "database": "\(configuration.database)",
            "providers": "\(adapters.keys.map(\.rawValue).sorted().joined(separator: ","))",
        ]
    )
    return app
}

/// One adapter per provider that has its secrets or keys configured (``AppConfiguration`` has
/// checked that the keys load).
private func webhookAdapters(_ configuration: AppConfiguration) throws -> [Provider: any WebhookAdapter] {
    let tolerance = TimeInterval(configuration.webhookTolerance)
    var adapters: [Provider: any WebhookAdapter] = [:]
    if !configuration.sandboxSecrets.isEmpty {
        adapters[.sandbox] = SandboxAdapter(secrets: configuration.sandboxSecrets, tolerance: tolerance)
    }
    if !configuration.stripeSecrets.isEmpty {
        adapters[.stripe] = StripeAdapter(secrets: configuration.stripeSecrets, tolerance: tolerance)
    }
    if let apiV3Key = configuration.wechatPayAPIv3Key {
        adapters[.wechatpay] = try WeChatPayAdapter(
            platformKeyTexts: configuration.wechatPayPlatformKeys,
            apiV3Key: apiV3Key,
            tolerance: tolerance
        )
    }
    if let key = configuration.alipayPublicKey, let appID = configuration.alipayAppID {
        // Alipay's notifications carry no signed timestamp to hold to a window (notify_time is
        // outside any guarantee); replays are absorbed by the inbox's unique notify_id instead.
        adapters[.alipay] = try AlipayAdapter(publicKeyTexts: [key], appID: appID, tolerance: nil)
    }
    return adapters
}
