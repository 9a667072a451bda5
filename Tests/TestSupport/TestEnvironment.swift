public import Foundation
import Glibc
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

    /// The `paynotify` executable that end-to-end tests start (`make test` builds it and sets
    /// `PAYNOTIFY_TEST_BINARY`; a plain `swift test` finds the debug build).
    public static func binary() throws -> String {
        let path =
            ProcessInfo.processInfo.environment["PAYNOTIFY_TEST_BINARY"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/paynotify").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSetupError("no paynotify binary at \(path): run the tests with `make test`")
        }
        return path
    }

    /// Where tests leave files for people to look at (screenshots): `PAYNOTIFY_TEST_ARTIFACTS`, or
    /// `.build/test-artifacts` in the repository.
    public static func artifactsDirectory() throws -> URL {
        let url =
            ProcessInfo.processInfo.environment["PAYNOTIFY_TEST_ARTIFACTS"].map { URL(fileURLWithPath: $0) }
            ?? repositoryRoot.appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it; a small race with
    /// other processes remains, as with any such choice).
    public static func freePort() throws -> Int {
        let (socket, port) = try self.loopbackSocket(listening: nil)
        close(socket)
        return port
    }

    /// A port on 127.0.0.1 for a server that listens for the whole test (a database node), below
    /// the kernel's ephemeral range (32768 and up here), where the source ports of the test run's
    /// many outgoing connections could take it between the choice and the server's bind; checked
    /// free by binding it, as `scripts/pg-cluster.sh` chooses its clusters' ports.
    public static func serverPort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20_000..<32_000)
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socket >= 0 else { continue }
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            if bound { return port }
        }
        throw TestSetupError("no free port from 20000 to 31999 on 127.0.0.1")
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func canConnect(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// A TCP socket bound to 127.0.0.1 on a port the kernel picks, listening with `backlog` when
    /// given; the caller closes it.
    public static func loopbackSocket(listening backlog: Int32?) throws -> (descriptor: Int32, port: Int) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw TestSetupError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(socket, address, length) == 0 && backlog.map { listen(socket, $0) == 0 } ?? true
                    && getsockname(socket, address, &length) == 0
            }
        }
        guard bound else {
            close(socket)
            throw TestSetupError("bind() or listen() failed: errno \(errno)")
        }
        return (socket, Int(UInt16(bigEndian: address.sin_port)))
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

/// Runs `body`, then `cleanup` whether `body` threw or not, with `onFailure` (printing logs, say)
/// before it when it threw; returns `body`'s value or rethrows its error.
public func running<T: Sendable>(
    _ body: () async throws -> T,
    onFailure: () -> Void = {},
    finally cleanup: () async throws -> Void
) async throws -> T {
    let result: Result<T, any Error>
    do {
        result = .success(try await body())
    } catch {
        result = .failure(error)
        onFailure()
    }
    try await cleanup()
    return try result.get()
}

/// The last `count` lines of a log file, for a failed test's output ("" when it cannot be read).
public func lastLines(ofFile path: String, _ count: Int = 20) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").suffix(count).joined(separator: "\n")
}
