import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import TestSupport
import Testing

/// Debian's Prometheus with `deploy/prometheus` (its targets and intervals rewritten for loopback)
/// scraping two running instances: every rule loads and evaluates, every recording rule has
/// series, every series a rule reads is exported by both instances, and an instance that stops
/// makes `PayNotifyInstanceDown` pending.
@Suite("Prometheus with deploy/prometheus against two instances", .serialized)
struct PrometheusTests {
    @Test func everyRuleReadsSeriesBothInstancesExport() async throws {
        // Reconciled providers (their series exist; nothing is ever asked, as no order is made) and
        // a merchant endpoint (its series exist once it is there).
        var settings = EmulatedProviderKeys.shared.serviceSettings(emulatorPort: try TestEnvironment.freePort())
        settings["PAYNOTIFY_ALLOW_HTTP_WEBHOOKS"] = "true"
        settings["PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS"] = "127.0.0.0/8"
        try await Deployment.run(settings: settings) { deployment in
            _ = try await deployment.direct(0).createEndpoint(url: "http://127.0.0.1:9/never-called")
            let prometheus = try await PrometheusServer.start(
                targets: deployment.instancePorts.map { "127.0.0.1:\($0)" },
                directory: deployment.directory
            )
            try await running(
                { try await Self.check(prometheus, deployment: deployment) },
                onFailure: { print("---- prometheus.log (last lines) ----\n" + lastLines(ofFile: prometheus.log)) },
                finally: { try await prometheus.stop() }
            )
        }
    }

    private static func check(_ prometheus: PrometheusServer, deployment: Deployment) async throws {
        // Every rule evaluated without error, twice over (the first scrapes may come after the first evaluation).
        try await eventually(within: .seconds(60), "every rule evaluated healthy with both targets up") {
            let rules = try await prometheus.rules()
            let healthy = rules.allSatisfy { ($0["health"] as? String) == "ok" }
            let up = try await prometheus.query(#"sum(up{job="paynotify"})"#).first?.value == 2
            return !rules.isEmpty && healthy && up
        }
        try await Task.sleep(for: .seconds(3))
        let rules = try await prometheus.rules()
        let unhealthy = rules.filter { ($0["health"] as? String) != "ok" }.map {
            "\($0["name"] ?? "?"): \($0["lastError"] ?? "")"
        }
        #expect(unhealthy.isEmpty, "rules failing: \(unhealthy)")
        let recording = rules.filter { ($0["type"] as? String) == "recording" }.compactMap { $0["name"] as? String }
        let alerting = rules.filter { ($0["type"] as? String) == "alerting" }
        #expect(recording.count >= 7 && alerting.count >= 9, "rules loaded: \(rules.count)")

        for name in recording {
            #expect(try await !prometheus.query(name).isEmpty, "recording rule \(name) has no series")
        }
        // The raw series every rule reads, each from both instances.
        let expressions = rules.compactMap { $0["query"] as? String }
        let names = Set(expressions.flatMap { $0.matches(of: #/paynotify_[a-z_]+/#).map { String($0.output) } })
        #expect(names.count >= 9, "series named by the rules: \(names.sorted())")
        for name in names.sorted() {
            let instances = try await prometheus.query(#"count by (instance) ({__name__="\#(name)"})"#).count
            #expect(instances == 2, "\(name): exported by \(instances) of 2 instances")
        }

        // An instance that stops answering: the alert's expression holds at once (pending; it fires
        // after its `for:` of a minute, which the rules' unit tests cover).
        deployment.instance(1).signal(SIGKILL)
        try await eventually(within: .seconds(30), "PayNotifyInstanceDown pending") {
            let alerts = try await prometheus.query(#"ALERTS{alertname="PayNotifyInstanceDown"}"#)
            return alerts.contains { $0.labels["instance"] == "127.0.0.1:\(deployment.instancePorts[1])" }
        }
    }
}

/// `/usr/bin/prometheus` with `deploy/prometheus/prometheus.yml` rewritten: the two targets, a
/// 1 s scrape and evaluation interval, the rules file by its absolute path; on loopback.
private final class PrometheusServer: Sendable {
    let port: Int
    private let process: ChildProcess
    let log: String

    private init(port: Int, process: ChildProcess, log: String) {
        self.port = port
        self.process = process
        self.log = log
    }

    static func start(targets: [String], directory: URL) async throws -> PrometheusServer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") else {
            throw TestSetupError("prometheus is not installed: run the tests with `make test`")
        }
        let deployDirectory = TestEnvironment.repositoryRoot.appendingPathComponent("deploy/prometheus")
        var configuration = try String(
            contentsOf: deployDirectory.appendingPathComponent("prometheus.yml"),
            encoding: .utf8
        )
        let replacements = [
            "scrape_interval: 15s": "scrape_interval: 1s",
            "evaluation_interval: 15s": "evaluation_interval: 1s",
            "  - rules.yml": "  - \(deployDirectory.appendingPathComponent("rules.yml").path)",
            #"targets: ["paynotify-1:8080", "paynotify-2:8080"]"#:
                "targets: [\(targets.map { "\"\($0)\"" }.joined(separator: ", "))]",
        ]
        for (line, replacement) in replacements {
            guard configuration.contains(line) else {
                throw TestSetupError("deploy/prometheus/prometheus.yml no longer has \"\(line)\"")
            }
            configuration = configuration.replacingOccurrences(of: line, with: replacement)
        }
        let path = directory.appendingPathComponent("prometheus.yml").path
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let port = try TestEnvironment.freePort()
        let log = directory.appendingPathComponent("prometheus.log").path
        let process = try ChildProcess.start(
            "/usr/bin/prometheus",
            [
                "--config.file=\(path)", "--storage.tsdb.path=\(directory.appendingPathComponent("tsdb").path)",
                "--web.listen-address=127.0.0.1:\(port)",
            ],
            outputPath: log,
            errorPath: log
        )
        let server = PrometheusServer(port: port, process: process, log: log)
        do {
            try await eventually(within: .seconds(30), "prometheus ready") {
                guard process.isRunning else { throw TestSetupError("prometheus exited: \(lastLines(ofFile: log))") }
                return (try? await server.client.send(method: .GET, path: "/-/ready").status) == 200
            }
        } catch {
            try? await process.stop()
            throw error
        }
        return server
    }

    private var client: LoopbackHTTPClient { LoopbackHTTPClient(host: "127.0.0.1", port: self.port) }

    func stop() async throws { try await self.process.stop() }

    /// Every rule of every group, as `/api/v1/rules` describes it.
    func rules() async throws -> [[String: Any]] {
        let data = try await self.get("/api/v1/rules")
        let groups = (data["groups"] as? [[String: Any]]) ?? []
        return groups.flatMap { ($0["rules"] as? [[String: Any]]) ?? [] }
    }

    struct Sample {
        let labels: [String: String]
        let value: Double?
    }

    /// An instant query's samples.
    func query(_ expression: String) async throws -> [Sample] {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        let encoded = components.percentEncodedQuery!.replacingOccurrences(of: "+", with: "%2B")
        let data = try await self.get("/api/v1/query?" + encoded)
        return ((data["result"] as? [[String: Any]]) ?? []).map { sample in
            let value = (sample["value"] as? [Any])?.last.flatMap { $0 as? String }.flatMap(Double.init)
            return Sample(labels: (sample["metric"] as? [String: String]) ?? [:], value: value)
        }
    }

    private func get(_ path: String) async throws -> [String: Any] {
        let response = try await self.client.send(method: .GET, path: path)
        guard response.status == 200,
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            json["status"] as? String == "success", let data = json["data"] as? [String: Any]
        else { throw UnexpectedAnswer(description: "GET \(path): \(response.status) \(response.text)") }
        return data
    }
}
