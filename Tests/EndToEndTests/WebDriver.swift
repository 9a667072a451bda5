import Foundation
import NIOHTTP1
import PayNotifyClient
import TestSupport

/// Debian's headless Chromium, driven through chromedriver's W3C WebDriver API (plain JSON over
/// HTTP on loopback, spoken with the tests' own client). The test starts chromedriver by pid and
/// stops it, and with it the browser, afterwards.
struct WebDriver: Sendable {
    let driver: ChildProcess
    let client: LoopbackHTTPClient
    let session: String

    /// Starts chromedriver and a browser session, runs `body`, then ends both.
    ///
    /// - Parameter acceptInsecureCertificates: accept a self-signed TLS certificate (a test's own).
    static func run<T: Sendable>(
        logDirectory: URL,
        acceptInsecureCertificates: Bool = false,
        _ body: @Sendable (WebDriver) async throws -> T
    ) async throws -> T {
        let port = try TestEnvironment.freePort()
        let log = logDirectory.appendingPathComponent("chromedriver.log").path
        let driver = try ChildProcess.start(
            "/usr/bin/chromedriver",
            ["--port=\(port)", "--allowed-ips=127.0.0.1"],
            outputPath: log,
            errorPath: log
        )
        let client = LoopbackHTTPClient(host: "127.0.0.1", port: port)
        let result: Result<T, any Error>
        do {
            try await eventually(within: .seconds(30), "chromedriver ready") {
                (try? await client.send(method: .GET, path: "/status").status) == 200
            }
            let profile = logDirectory.appendingPathComponent("chromium-profile").path
            let created = try await Self.call(
                client,
                .POST,
                "/session",
                [
                    "capabilities": [
                        "alwaysMatch": [
                            "browserName": "chrome",
                            "acceptInsecureCerts": acceptInsecureCertificates,
                            "goog:chromeOptions": [
                                "binary": "/usr/bin/chromium",
                                "args": [
                                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--window-size=900,1100", "--user-data-dir=\(profile)",
                                ],
                            ],
                        ]
                    ]
                ]
            )
            guard let session = (created as? [String: Any])?["sessionId"] as? String else {
                throw UnexpectedAnswer(description: "no WebDriver session: \(String(describing: created))")
            }
            let webDriver = WebDriver(driver: driver, client: client, session: session)
            do {
                result = .success(try await body(webDriver))
            } catch {
                result = .failure(error)
            }
            _ = try? await Self.call(client, .DELETE, "/session/\(session)", nil)
        } catch {
            result = .failure(error)
        }
        try await driver.stop()
        return try result.get()
    }

    func navigate(to url: String) async throws {
        _ = try await Self.call(self.client, .POST, "/session/\(self.session)/url", ["url": url])
    }

    /// Runs JavaScript in the page and returns its result (`return …;`).
    func execute(_ script: String) async throws -> Any? {
        try await Self.call(
            self.client,
            .POST,
            "/session/\(self.session)/execute/sync",
            ["script": script, "args": [] as [Any]]
        )
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let encoded = try await Self.call(self.client, .GET, "/session/\(self.session)/screenshot", nil)
        guard let base64 = encoded as? String, let png = Data(base64Encoded: base64) else {
            throw UnexpectedAnswer(description: "the screenshot was not base64")
        }
        return png
    }

    /// One WebDriver command: its `value`, or a thrown error carrying WebDriver's message.
    private static func call(
        _ client: LoopbackHTTPClient,
        _ method: HTTPMethod,
        _ path: String,
        _ body: [String: Any]?
    ) async throws -> Any? {
        let response = try await client.send(
            method: method,
            path: path,
            headers: [("Content-Type", "application/json")],
            body: try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) } ?? []
        )
        let json = try? JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])
        guard response.status == 200 else {
            throw UnexpectedAnswer(description: "WebDriver \(path): \(response.status) \(response.text)")
        }
        return (json as? [String: Any])?["value"]
    }
}
