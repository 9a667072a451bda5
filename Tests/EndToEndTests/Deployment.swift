import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import TestSupport

/// The real programs, as deployed: `paynotify serve` instances (the binary `make test` built) on a
/// fresh database, and nginx in front of them with `deploy/nginx.conf`, its upstreams and listen
/// port rewritten to loopback ports for the test. Everything it starts, it stops (by pid).
struct Deployment: Sendable {
    let database: TestDatabase
    let instances: [ChildProcess]
    let instancePorts: [Int]
    let nginx: ChildProcess
    let nginxPort: Int
    let directory: URL

    /// A client for nginx: what browsers and providers talk to.
    var viaNginx: LoopbackHTTPClient { LoopbackHTTPClient(host: "127.0.0.1", port: self.nginxPort) }

    /// A client for one instance directly.
    func direct(_ index: Int) -> LoopbackHTTPClient {
        LoopbackHTTPClient(host: "127.0.0.1", port: self.instancePorts[index])
    }

    /// Starts two instances and nginx, runs `body`, then stops them all, whether `body` threw or not.
    static func run<T: Sendable>(
        settings: [String: String] = [:],
        _ body: @Sendable (Deployment) async throws -> T
    ) async throws -> T {
        let deployment = try await Self.start(settings: settings)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(deployment))
        } catch {
            result = .failure(error)
        }
        try await deployment.stop()
        if case .failure = result { deployment.printLogs() }
        return try result.get()
    }

    private static func start(settings: [String: String]) async throws -> Deployment {
        let directory = try TestEnvironment.workDirectory().appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = try await TestDatabase.create()
        let binary = try TestEnvironment.binary()
        var instances: [ChildProcess] = []
        var ports: [Int] = []
        for index in 1...2 {
            let port = try TestEnvironment.freePort()
            var environment = TestSecrets.environment
            environment.merge([
                "PATH": "/usr/bin:/bin", "DATABASE_URL": database.url, "PAYNOTIFY_HOST": "127.0.0.1",
                "PAYNOTIFY_PORT": "\(port)", "PAYNOTIFY_TRUSTED_PROXIES": "127.0.0.1",
                "PAYNOTIFY_LOG_LEVEL": "warning", "PAYNOTIFY_ADMIN_TOKEN": TestSecrets.adminToken,
            ]) { $1 }
            environment.merge(settings) { $1 }
            let log = directory.appendingPathComponent("instance-\(index).log").path
            instances.append(
                try ChildProcess.start(binary, ["serve"], environment: environment, outputPath: log, errorPath: log)
            )
            ports.append(port)
        }
        for port in ports {
            let client = LoopbackHTTPClient(host: "127.0.0.1", port: port)
            try await eventually(within: .seconds(60), "instance on \(port) ready") {
                (try? await client.send(method: .GET, path: "/readyz").status) == 200
            }
        }

        let nginxPort = try TestEnvironment.freePort()
        let template = try String(
            contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("deploy/nginx.conf"),
            encoding: .utf8
        )
        let configuration =
            template
            .replacingOccurrences(of: "server paynotify-1:8080", with: "server 127.0.0.1:\(ports[0])")
            .replacingOccurrences(of: "server paynotify-2:8080", with: "server 127.0.0.1:\(ports[1])")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(nginxPort);")
        let configurationPath = directory.appendingPathComponent("nginx.conf").path
        try configuration.write(toFile: configurationPath, atomically: true, encoding: .utf8)
        let nginxLog = directory.appendingPathComponent("nginx.log").path
        let nginx = try ChildProcess.start(
            "/usr/sbin/nginx",
            [
                "-p", directory.path + "/", "-c", configurationPath, "-e", nginxLog,
                "-g", "daemon off; pid \(directory.path)/nginx.pid;",
            ],
            outputPath: nginxLog,
            errorPath: nginxLog
        )
        let deployment = Deployment(
            database: database,
            instances: instances,
            instancePorts: ports,
            nginx: nginx,
            nginxPort: nginxPort,
            directory: directory
        )
        try await eventually(within: .seconds(20), "nginx answering") {
            (try? await deployment.viaNginx.send(method: .GET, path: "/healthz").status) == 200
        }
        return deployment
    }

    private func stop() async throws {
        try await self.nginx.stop()
        for instance in self.instances { try await instance.stop() }
    }

    /// The programs' logs, for a failed test's output.
    private func printLogs() {
        for name in ["instance-1.log", "instance-2.log", "nginx.log"] {
            let text = (try? String(contentsOf: self.directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            print("---- \(name) (last lines) ----\n" + text.split(separator: "\n").suffix(40).joined(separator: "\n"))
        }
    }
}
