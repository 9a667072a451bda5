public import Foundation
import NIOPosix
public import Postgres

/// Where the tests find their database and the repository, as `make test` sets them up.
public enum TestEnvironment {
    /// The repository's root folder, found from this file's place in it.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    public static var migrationsDirectory: URL { repositoryRoot.appendingPathComponent("migrations") }

    /// The shared test cluster's URL. Missing means the tests were not started by `make test`;
    /// that is a failure, not a reason to skip.
    public static func databaseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["PAYNOTIFY_TEST_DATABASE_URL"], !url.isEmpty else {
            throw TestSetupError("PAYNOTIFY_TEST_DATABASE_URL is not set: run the tests with `make test`")
        }
        return url
    }

    /// A folder for clusters a test makes itself; `make test` stops and removes what is in it.
    public static func workDirectory() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["PAYNOTIFY_TEST_WORK_DIR"], !path.isEmpty else {
            throw TestSetupError("PAYNOTIFY_TEST_WORK_DIR is not set: run the tests with `make test`")
        }
        return URL(fileURLWithPath: path)
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// Threads for the tests' own blocking libpq calls, so they never block Swift's cooperative pool
/// (two threads on this machine; a test blocked there could starve the code under test).
public enum TestThreads {
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Runs blocking work off the cooperative pool.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await self.pool.runIfActive(body)
    }

    /// Opens a connection, runs `body` on it and closes it, all off the cooperative pool.
    @discardableResult
    public static func withConnection<T: Sendable>(
        _ configuration: ConnectionConfiguration,
        _ body: @escaping @Sendable (Connection) throws -> T
    ) async throws -> T {
        try await self.run {
            let connection = try Connection.connect(configuration)
            defer { connection.close() }
            return try body(connection)
        }
    }
}

/// Waits until `condition` holds, checking every 20 ms, or fails after `timeout`.
public func eventually(
    within timeout: Duration = .seconds(10),
    _ what: String,
    _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSetupError("timed out after \(timeout) waiting for: \(what)")
}
