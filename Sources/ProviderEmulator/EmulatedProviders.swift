public import Foundation
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle

/// A local stand-in for WeChat Pay v3, Alipay's gateway and Stripe, for tests, the demo and the
/// benchmark: one HTTP server that speaks the three APIs with their real signing, keeps trades,
/// sends each provider's callbacks to our webhook URL signed as the provider signs them, and
/// misbehaves when told to through its control API (`/control/…`). It is no part
/// of the service's trusted path: the service reaches it only through configured API URLs.
public enum EmulatedProviders {
    /// Assembles the emulator: the three providers' routes, the control API, and the callback
    /// sender as a service of the application. `paynotify emulate-providers` runs what this
    /// returns in its service group.
    ///
    /// - Parameters:
    ///   - now: the clock for signatures' timestamps, the 5-minute close rule and the call log.
    ///   - onListening: called with the port bound once the server listens (the one asked for, or
    ///     the one the system chose for port 0).
    public static func buildApplication(
        configuration: Configuration,
        logger: Logger? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let logger = logger ?? Logger(label: "provider-emulator")
        let callbacks = CallbackSender(
            baseURL: configuration.webhookBaseURL,
            retryDelays: configuration.callbackRetryDelays,
            logger: logger,
            now: now
        )
        let emulator = Emulator(configuration: configuration, callbacks: callbacks, logger: logger, now: now)
        let router = Router()
        // The checkout demo's page pays at the "provider" from the shopper's browser, as a real
        // shopper does: its control calls come from another origin. (A development tool, so any
        // origin may.)
        router.add(
            middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.contentType], allowMethods: [.get, .post])
        )
        WeChatPayAPI(emulator: emulator).addRoutes(to: router)
        AlipayGateway(emulator: emulator).addRoutes(to: router)
        StripeAPI(emulator: emulator).addRoutes(to: router)
        ControlAPI(emulator: emulator).addRoutes(to: router)
        var app = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "provider-emulator"
            ),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        app.addServices(callbacks)
        return app
    }

    /// Runs an emulator while `body` runs, gives `body` the port it listens on, then stops it
    /// gracefully: for tests, with port 0.
    public static func serve<T: Sendable>(
        configuration: Configuration,
        logger: Logger? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        _ body: @Sendable (Int) async throws -> T
    ) async throws -> T {
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let app = Self.buildApplication(configuration: configuration, logger: logger, now: now) { port in
            listening.yield(port)
            listening.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A server that cannot bind ends here: the wait for the port ends with it.
                defer { listening.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            let result: Result<T, any Error>
            if port == 0 {
                result = .failure(StartError(host: configuration.host, port: configuration.port))
            } else {
                do { result = .success(try await body(port)) } catch { result = .failure(error) }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }

    /// The emulator stopped before it listened.
    public struct StartError: Error, CustomStringConvertible {
        public let host: String
        public let port: Int

        public var description: String { "the provider emulator did not start listening on \(self.host):\(self.port)" }
    }
}
