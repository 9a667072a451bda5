import ArgumentParser
import Logging
import PayNotify
import Postgres
import Storage

/// `paynotify migrate`: apply pending migrations and exit.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var settings: Settings

    func run() async throws {
        let configuration = try self.settings.configuration()
        var logger = Logger(label: "paynotify")
        logger.logLevel = configuration.log.level
        let migrations = try Schema.migrations(directory: configuration.database.migrationsDirectory)
        let applied = try await Migrator(migrations: migrations, logger: logger).migrate(
            configuration.database.connection
        )
        print(applied.isEmpty ? "schema up to date" : "applied \(applied.count) migration(s)")
    }
}
