public import Foundation

/// A PostgreSQL cluster of a test's own, which it may stop and start (the shared one must stay up
/// for the other tests). Made by the same script as `make run`'s; `make test` removes it afterwards.
public struct TestCluster: Sendable {
    public let directory: URL
    public let url: String

    /// Creates and starts a cluster on a free port.
    public static func start() async throws -> Self {
        let directory = try TestEnvironment.workDirectory().appendingPathComponent("cluster-\(UUID().uuidString)")
        let url = try await Self.script("start", directory.path, "auto", "test")
        return Self(directory: directory, url: url)
    }

    /// Fast shutdown: connections are terminated and new ones refused until ``restart()``.
    public func stop() async throws {
        _ = try await Self.script("stop", self.directory.path)
    }

    /// Starts the stopped cluster again, on the same port.
    public func restart() async throws {
        _ = try await Self.script("start", self.directory.path)
    }

    /// Stops the cluster (fast shutdown), and starts it again after `outage`.
    public func restart(after outage: Duration) async throws {
        try await self.stop()
        try await Task.sleep(for: outage)
        try await self.restart()
    }

    /// Runs `scripts/pg-cluster.sh` and returns what it printed on standard output.
    private static func script(_ arguments: String...) async throws -> String {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/pg-cluster.sh").path
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pg-cluster-\(UUID().uuidString).out"
        ).path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = try ChildProcess.start(script, arguments, outputPath: outputPath)
        let status = try await process.wait()
        guard ChildProcess.succeeded(status) else {
            throw TestSetupError("pg-cluster.sh \(arguments.joined(separator: " ")) failed (wait status \(status))")
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
