import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import Synchronization
import TestSupport

/// The real programs, as deployed: `paynotify serve` instances (the binary `make test` built) on a
/// fresh database, and nginx in front of them with `deploy/nginx.conf`, its upstreams and listen
/// port rewritten to loopback ports for the test. Everything it starts, it stops (by pid).
final class Deployment: Sendable {
    let database: TestDatabase
    let instancePorts: [Int]
    let nginx: ChildProcess
    let nginxPort: Int
    /// nginx's HTTPS port (TLS and HTTP/2), with a self-signed certificate for 127.0.0.1 made by
    /// scripts/tls-cert.sh.
    let nginxTLSPort: Int
    let directory: URL
    private let binary: String
    private let environments: [[String: String]]
    /// The current process of each instance, and every process started (to reap them all).
    private let processes: Mutex<(current: [ChildProcess], all: [ChildProcess])>

    private init(
        database: TestDatabase,
        binary: String,
        environments: [[String: String]],
        instances: [ChildProcess],
        instancePorts: [Int],
        nginx: ChildProcess,
        nginxPort: Int,
        nginxTLSPort: Int,
        directory: URL
    ) {
        self.database = database
        self.binary = binary
        self.environments = environments
        self.processes = Mutex((instances, instances))
        self.instancePorts = instancePorts
        self.nginx = nginx
        self.nginxPort = nginxPort
        self.nginxTLSPort = nginxTLSPort
        self.directory = directory
    }

    /// A client for nginx: what browsers and providers talk to.
    var viaNginx: LoopbackHTTPClient { LoopbackHTTPClient(host: "127.0.0.1", port: self.nginxPort) }

    /// A client for one instance directly.
    func direct(_ index: Int) -> LoopbackHTTPClient {
        LoopbackHTTPClient(host: "127.0.0.1", port: self.instancePorts[index])
    }

    /// The running process of instance `index`.
    func instance(_ index: Int) -> ChildProcess {
        self.processes.withLock { $0.current[index] }
    }

    /// Starts instance `index` again (after it was killed), on its port, and waits until it is ready.
    func restart(_ index: Int) async throws {
        let process = try Self.startInstance(
            self.binary,
            environment: self.environments[index],
            log: self.directory.appendingPathComponent("instance-\(index + 1).log").path
        )
        self.processes.withLock { processes in
            processes.current[index] = process
            processes.all.append(process)
        }
        try await Self.waitReady(port: self.instancePorts[index])
    }

    /// SIGKILLs instance `index`, and a second later starts it again and waits until it is ready.
    func killAndRestart(_ index: Int) async throws {
        self.instance(index).signal(SIGKILL)
        try await Task.sleep(for: .seconds(1))
        try await self.restart(index)
    }

    /// Starts two instances and nginx, runs `body`, then stops them all, whether `body` threw or not.
    ///
    /// - Parameter database: where the instances keep their data; a fresh database when `nil`.
    static func run<T: Sendable>(
        settings: [String: String] = [:],
        database: TestDatabase? = nil,
        _ body: @Sendable (Deployment) async throws -> T
    ) async throws -> T {
        let deployment = try await Self.start(settings: settings, database: database)
        return try await running(
            { try await body(deployment) },
            onFailure: { deployment.printLogs() },
            finally: { try await deployment.stop() }
        )
    }

    private static func start(settings: [String: String], database: TestDatabase?) async throws -> Deployment {
        let directory = try TestEnvironment.workDirectory().appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = if let database { database } else { try await TestDatabase.create() }
        let binary = try TestEnvironment.binary()
        var instances: [ChildProcess] = []
        var environments: [[String: String]] = []
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
            instances.append(try Self.startInstance(binary, environment: environment, log: log))
            environments.append(environment)
            ports.append(port)
        }
        for port in ports { try await Self.waitReady(port: port) }

        let nginxPort = try TestEnvironment.freePort()
        let nginxTLSPort = try TestEnvironment.freePort()
        let tls = directory.appendingPathComponent("tls").path
        let certificate = try ChildProcess.start(
            TestEnvironment.repositoryRoot.appendingPathComponent("scripts/tls-cert.sh").path,
            [tls],
            outputPath: "/dev/null"
        )
        guard ChildProcess.succeeded(try await certificate.wait()) else {
            throw TestSetupError("scripts/tls-cert.sh failed")
        }
        let template = try String(
            contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("deploy/nginx.conf"),
            encoding: .utf8
        )
        var configuration = template
        for (line, replacement) in [
            ("server paynotify-1:8080", "server 127.0.0.1:\(ports[0])"),
            ("server paynotify-2:8080", "server 127.0.0.1:\(ports[1])"),
            ("listen 80;", "listen 127.0.0.1:\(nginxPort);"),
            ("listen 443 ssl http2;", "listen 127.0.0.1:\(nginxTLSPort) ssl http2;"),
            ("ssl_certificate /etc/nginx/tls/fullchain.pem;", "ssl_certificate \(tls)/fullchain.pem;"),
            ("ssl_certificate_key /etc/nginx/tls/privkey.pem;", "ssl_certificate_key \(tls)/privkey.pem;"),
        ] {
            guard configuration.contains(line) else {
                throw TestSetupError("deploy/nginx.conf no longer has \"\(line)\"")
            }
            configuration = configuration.replacingOccurrences(of: line, with: replacement)
        }
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
            binary: binary,
            environments: environments,
            instances: instances,
            instancePorts: ports,
            nginx: nginx,
            nginxPort: nginxPort,
            nginxTLSPort: nginxTLSPort,
            directory: directory
        )
        try await eventually(within: .seconds(20), "nginx answering") {
            (try? await deployment.viaNginx.send(method: .GET, path: "/healthz").status) == 200
        }
        return deployment
    }

    private static func startInstance(_ binary: String, environment: [String: String], log: String) throws
        -> ChildProcess
    {
        try ChildProcess.start(binary, ["serve"], environment: environment, outputPath: log, errorPath: log)
    }

    private static func waitReady(port: Int) async throws {
        let client = LoopbackHTTPClient(host: "127.0.0.1", port: port)
        try await eventually(within: .seconds(60), "instance on \(port) ready") {
            (try? await client.send(method: .GET, path: "/readyz").status) == 200
        }
    }

    private func stop() async throws {
        try await self.nginx.stop()
        for instance in self.processes.withLock({ $0.all }) { try await instance.stop() }
    }

    /// The programs' logs, for a failed test's output.
    private func printLogs() {
        for name in ["instance-1.log", "instance-2.log", "nginx.log"] {
            let path = self.directory.appendingPathComponent(name).path
            print("---- \(name) (last lines) ----\n" + lastLines(ofFile: path, 40))
        }
    }
}
