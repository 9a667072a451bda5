import Foundation
import Logging
public import Postgres

/// A fresh database on the shared test cluster, for one test: tests never see each other's rows.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    public let configuration: ConnectionConfiguration

    /// Creates an empty database, with the repository's migrations applied when `migrated`.
    public static func create(migrated: Bool = false, applicationName: String = "paynotify-test") async throws -> Self {
        let sharedURL = try TestEnvironment.databaseURL()
        let name = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await TestThreads.withConnection(try ConnectionConfiguration(sharedURL)) { connection in
            // Identifiers cannot be parameters; the name is ours and only hex digits and underscores.
            try connection.execute("CREATE DATABASE \(name)")
        }
        var components = URLComponents(string: sharedURL)!
        components.path = "/" + name
        let database = try Self.existing(url: components.string!, applicationName: applicationName)
        if migrated {
            let migrations = try Migration.load(from: TestEnvironment.migrationsDirectory)
            _ = try await Migrator(migrations: migrations, logger: .init(label: "test")).migrate(database.configuration)
        }
        return database
    }

    /// A database that exists already (a ``TestCluster``'s own, say), as the tests' connections see it.
    public static func existing(url: String, applicationName: String = "paynotify-test") throws -> Self {
        var defaults = ConnectionConfiguration.serviceDefaults.filter { $0.keyword != "application_name" }
        defaults.append(("application_name", applicationName))
        let name = URLComponents(string: url)?.path.split(separator: "/").last.map(String.init) ?? ""
        return Self(name: name, url: url, configuration: try ConnectionConfiguration(url, defaults: defaults))
    }

    /// Runs blocking work on a new connection to this database, off the cooperative pool.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await TestThreads.withConnection(self.configuration, body)
    }
}
