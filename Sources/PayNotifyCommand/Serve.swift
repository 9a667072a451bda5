import ArgumentParser
import Hummingbird
import Logging
import PayNotify
import ServiceLifecycle
import UnixSignals

/// `paynotify serve`: migrate, then serve until SIGTERM or SIGINT, which stop it gracefully: streams
/// end with a short `retry:`, requests in flight are answered, and after
/// `PAYNOTIFY_SHUTDOWN_GRACE_SECONDS` whatever is left is cancelled.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP service (the default command).")

    @OptionGroup var settings: Settings

    func run() async throws {
        let configuration = try self.settings.configuration()
        let app = try await buildApplication(configuration: configuration)
        var group = ServiceGroupConfiguration(
            services: [app],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: app.logger
        )
        group.maximumGracefulShutdownDuration = configuration.http.shutdownGrace
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }
}
