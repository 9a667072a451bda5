import ArgumentParser
import Hummingbird
import PayNotify

/// `paynotify serve`: migrate, then serve until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP service (the default command).")

    @OptionGroup var settings: Settings

    func run() async throws {
        let configuration = try self.settings.configuration()
        let app = try await buildApplication(configuration: configuration)
        try await app.runService()  // graceful shutdown on SIGTERM and SIGINT
    }
}
