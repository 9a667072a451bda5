import ArgumentParser
import Foundation
import Hummingbird
import PayNotify
import ProviderEmulator
import ServiceLifecycle
import UnixSignals

/// `paynotify emulate-providers`: a local WeChat Pay, Alipay and Stripe for tests, the demo and the
/// benchmark (ProviderEmulator), until SIGTERM or SIGINT. Point the service's provider API URLs here.
struct EmulateProviders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulate-providers",
        abstract: "Emulate the WeChat Pay, Alipay and Stripe APIs and their callbacks (development)."
    )

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind.") var port = 8090
    @Option(help: "Directory of the development keys (make dev-keys).") var keys = ".data/dev-keys"
    @Option(help: "The service's base URL; callbacks go to <url>/v1/webhooks/{provider}.")
    var webhookURL = "http://127.0.0.1:8080"
    @Option(help: "WeChat Pay's minimum age of an order before it may be closed.")
    var wechatpayCloseAfterSeconds = 300
    @Option(help: "How long a planned timeout fault holds its answer.") var hangSeconds = 30

    func run() async throws {
        // The server's settings, secrets given as files included, so one environment serves both.
        let environment = try refusingBadSettings { () throws(ConfigurationErrors) in
            try SecretFiles.resolve(ProcessInfo.processInfo.environment)
        }
        var configuration: EmulatedProviders.Configuration
        do {
            configuration = try EmulatedProviders.Configuration(
                environment: environment,
                keysDirectory: self.keys,
                host: self.host,
                port: self.port,
                webhookBaseURL: self.webhookURL,
                closeMinimumAge: .seconds(self.wechatpayCloseAfterSeconds)
            )
        } catch {
            let lines = error.problems.map { "paynotify: configuration error: \($0)\n" }.joined()
            FileHandle.standardError.write(Data(lines.utf8))
            throw ExitCode(78)
        }
        configuration.hang = .seconds(self.hangSeconds)
        let app = EmulatedProviders.buildApplication(configuration: configuration)
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: app.logger)
        )
        try await group.run()
    }
}
