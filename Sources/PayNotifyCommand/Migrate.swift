import ArgumentParser
import Foundation
import Logging
import PayNotify
import Postgres

/// `paynotify migrate`: apply pending migrations and exit.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var settings: Settings

    func run() async throws {
        let configuration = try self.settings.configuration()
        var logger = Logger(label: "paynotify")
        logger.logLevel = configuration.logLevel
        let migrations = try Migration.load(from: URL(fileURLWithPath: configuration.migrationsDirectory))
        let applied = try await Migrator(migrations: migrations, logger: logger).migrate(configuration.database)
        print(applied.isEmpty ? "schema up to date" : "applied \(applied.count) migration(s)")
    }
}
