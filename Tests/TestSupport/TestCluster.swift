public import Foundation
import Glibc

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

    /// Runs `scripts/pg-cluster.sh` and returns what it printed, off the cooperative pool.
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid` on its own pid: Foundation's `Process`
    /// was seen here never returning from `waitUntilExit` when two scripts ended at the same time.
    private static func script(_ arguments: String...) async throws -> String {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/pg-cluster.sh").path
        return try await TestThreads.run {
            let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent(
                "pg-cluster-\(UUID().uuidString).out"
            ).path
            defer { try? FileManager.default.removeItem(atPath: outputPath) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            let argv = ([script] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, script, &actions, nil, argv, environ)
            guard spawned == 0 else { throw TestSetupError("could not start pg-cluster.sh: error \(spawned)") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else { throw TestSetupError("waitpid failed: errno \(errno)") }
            }
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            // Exited normally with status 0: the low 7 bits hold the signal (0) and the next 8 the code.
            guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
                throw TestSetupError("pg-cluster.sh \(arguments.joined(separator: " ")) failed (wait status \(status))")
            }
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
