import Foundation
public import Hummingbird
public import Logging
import Postgres

/// Assembles the whole service from its configuration: the database pool, the listener, the HTTP
/// routes and, before the server accepts a request, the migrations. `paynotify serve` runs what
/// this returns; the tests build the very same application.
///
/// Services start in dependency order and stop in reverse: pool, listener, then the HTTP server.
public func buildApplication(
    configuration: AppConfiguration,
    logger: Logger? = nil
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
        configuration: .init(connection: configuration.database, channels: NotificationChannel.all),
        logger: logger
    )

    let router = Router()
    router.add(middleware: JSONErrorMiddleware())
    HealthController(pool: pool, listener: listener).addRoutes(to: router)

    var app = Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "paynotify"
        ),
        logger: logger
    )
    app.addServices(pool, listener)
    if configuration.migrateOnStart {
        let migrator = Migrator(
            migrations: try Migration.load(from: URL(fileURLWithPath: configuration.migrationsDirectory)),
            logger: logger
        )
        app.beforeServerStarts {
            _ = try await migrator.migrate(configuration.database)
        }
    }
    logger.info("configured", metadata: ["database": "\(configuration.database)"])
    return app
}
