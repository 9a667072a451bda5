import ArgumentParser
import Foundation
import Logging
import PayNotify

/// Flags shared by the commands. Each overrides the environment variable named in its help, and is
/// validated with it, so an error names the variable whichever way the value came.
struct Settings: ParsableArguments {
    @Option(help: "Address to bind (PAYNOTIFY_HOST).")
    var host: String?

    @Option(help: "Port to bind (PAYNOTIFY_PORT).")
    var port: String?

    @Option(help: "postgres:// URL or libpq connection string (DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Directory of NNNN_name.sql migrations (PAYNOTIFY_MIGRATIONS_DIR).")
    var migrations: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (PAYNOTIFY_LOG_LEVEL).")
    var logLevel: String?

    /// The environment with the flags laid over it, validated; log records take the configured
    /// format from here on.
    func configuration() throws -> AppConfiguration {
        var environment = ProcessInfo.processInfo.environment
        let flags = [
            "PAYNOTIFY_HOST": self.host, "PAYNOTIFY_PORT": self.port, "DATABASE_URL": self.databaseURL,
            "PAYNOTIFY_MIGRATIONS_DIR": self.migrations, "PAYNOTIFY_LOG_LEVEL": self.logLevel,
        ]
        // A flag overrides its variable in both forms (`--database-url` over `DATABASE_URL_FILE` too).
        for case (let name, let value?) in flags {
            environment[name] = value
            environment[name + "_FILE"] = nil
        }
        let configuration = try refusingBadSettings { () throws(ConfigurationErrors) in
            try AppConfiguration(environment: environment)
        }
        if configuration.log.format == .json {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        }
        return configuration
    }
}

/// Reads settings; when any is bad, says which, each on a line of its own, and exits with
/// EX_CONFIG (78): the process refuses to start.
func refusingBadSettings<T>(_ read: () throws(ConfigurationErrors) -> T) throws(ExitCode) -> T {
    do {
        return try read()
    } catch {
        let lines = error.errors.map { "paynotify: configuration error: \($0)\n" }.joined()
        FileHandle.standardError.write(Data(lines.utf8))
        throw ExitCode(78)
    }
}
