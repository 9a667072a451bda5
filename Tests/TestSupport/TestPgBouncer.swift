import Foundation

/// Debian's PgBouncer in transaction pooling mode in front of a test cluster, configured by the
/// repository's `deploy/pgbouncer.ini` with its address, port and authentication rewritten for
/// loopback. PgBouncer refuses to run as root, so as root it runs as the cluster's owner,
/// `postgres` (`setpriv` execs it: the pid stopped is PgBouncer's own).
public final class TestPgBouncer: Sendable {
    public let port: Int
    private let process: ChildProcess
    private let log: String

    private init(port: Int, process: ChildProcess, log: String) {
        self.port = port
        self.process = process
        self.log = log
    }

    /// `url` (a database on a test cluster) as reached through this PgBouncer.
    public func url(for url: String) -> String {
        var components = URLComponents(string: url)!
        components.port = self.port
        return components.string!
    }

    /// Starts PgBouncer in front of the cluster `upstreamURL` is on; every database there is reachable.
    public static func start(upstreamURL: String) async throws -> TestPgBouncer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/pgbouncer") else {
            throw TestSetupError("pgbouncer is not installed: run the tests with `make test`")
        }
        let upstream = URLComponents(string: upstreamURL)!
        let directory = try TestEnvironment.workDirectory().appendingPathComponent("pgbouncer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try TestEnvironment.freePort()
        let template = try String(
            contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("deploy/pgbouncer.ini"),
            encoding: .utf8
        )
        let userlist = directory.appendingPathComponent("userlist.txt").path
        try "\"postgres\" \"\"\n".write(toFile: userlist, atomically: true, encoding: .utf8)
        let configuration = try Self.rewrite(
            template,
            [
                "paynotify = host=postgres port=5432 dbname=paynotify":
                    "* = host=127.0.0.1 port=\(upstream.port ?? 5432)",
                "listen_addr = 0.0.0.0": "listen_addr = 127.0.0.1",
                "listen_port = 6432": "listen_port = \(port)\nunix_socket_dir =",
                "auth_type = scram-sha-256": "auth_type = trust",
                "auth_file = /etc/pgbouncer/userlist.txt": "auth_file = \(userlist)",
            ]
        )
        let path = directory.appendingPathComponent("pgbouncer.ini").path
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("pgbouncer.log").path
        let asOwner = getuid() == 0 ? ["--reuid=postgres", "--regid=postgres", "--init-groups"] : ["--"]
        let process = try ChildProcess.start(
            "/usr/bin/setpriv",
            asOwner + ["/usr/sbin/pgbouncer", path],
            outputPath: log,
            errorPath: log
        )
        let bouncer = TestPgBouncer(port: port, process: process, log: log)
        do {
            try await eventually(within: .seconds(20), "pgbouncer listening on \(port)") {
                guard process.isRunning else { return true }
                return TestEnvironment.canConnect(port: port)
            }
            guard process.isRunning else { throw TestSetupError("pgbouncer exited: \(lastLines(ofFile: log, 10))") }
        } catch {
            try? await process.stop()
            throw error
        }
        return bouncer
    }

    /// Starts one, runs `body`, and stops it whether `body` threw or not.
    public static func run<T: Sendable>(
        upstreamURL: String,
        _ body: @Sendable (TestPgBouncer) async throws -> T
    ) async throws -> T {
        let bouncer = try await Self.start(upstreamURL: upstreamURL)
        return try await running(
            { try await body(bouncer) },
            onFailure: { print("---- pgbouncer.log (last lines) ----\n" + lastLines(ofFile: bouncer.log)) },
            finally: { try await bouncer.stop() }
        )
    }

    public func stop() async throws {
        try await self.process.stop()
    }

    /// Replaces each line of the template; a line that is missing is an error (the file changed).
    private static func rewrite(_ template: String, _ replacements: [String: String]) throws -> String {
        var text = template
        for (line, replacement) in replacements {
            guard text.contains(line) else { throw TestSetupError("deploy/pgbouncer.ini no longer has \"\(line)\"") }
            text = text.replacingOccurrences(of: line, with: replacement)
        }
        return text
    }
}
