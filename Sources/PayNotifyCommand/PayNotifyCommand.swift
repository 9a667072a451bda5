import ArgumentParser
import PayNotify

/// `paynotify`: the payment-notification service and its tools.
@main
struct PayNotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paynotify",
        abstract: "Payment notifications: provider webhooks in, order streams out.",
        subcommands: [Serve.self, Migrate.self, Simulate.self, Listen.self, EmulateProviders.self],
        defaultSubcommand: Serve.self
    )
}
