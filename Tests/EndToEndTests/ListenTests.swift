import Foundation
import MerchantWebhooks
import NIOHTTP1
import PayNotifyClient
import TestSupport
import Testing

@Suite("paynotify listen, the developers' receiver")
struct ListenTests {
    /// It answers a correctly signed delivery with the chosen status and prints it readably; it
    /// refuses one signed with another secret with 400.
    @Test func verifiesPrintsAndAnswers() async throws {
        let text = try await Self.deliverOneGoodOneForged(options: ["--status", "503"])
        #expect(text.contains("✓ order.succeeded ord_x (succeeded) msg_1, answered 503"), "\(text)")
        #expect(text.contains("✗ refused /hooks: no v1 signature matches the secret"), "\(text)")
        #expect(text.contains("stopped: 1 deliveries verified, 1 refused"), "\(text)")
    }

    /// `--quiet` (the benchmark's receiver) prints no delivery, only the counts when stopped.
    @Test func quietPrintsOnlyTheCounts() async throws {
        let text = try await Self.deliverOneGoodOneForged(options: ["--quiet", "--status", "503"])
        #expect(!text.contains("✓") && !text.contains("✗"), "\(text)")
        #expect(text.contains("stopped: 1 deliveries verified, 1 refused"), "\(text)")
    }

    /// Starts `paynotify listen` with `options`, sends it a delivery signed with its secret (which
    /// must be answered 503) and one signed with another (400), stops it and returns its output.
    private static func deliverOneGoodOneForged(options: [String]) async throws -> String {
        let secret = WebhookSecret.generate()
        let port = try TestEnvironment.freePort()
        let output = try TestEnvironment.workDirectory().appendingPathComponent("listen-\(UUID().uuidString).log").path
        let process = try ChildProcess.start(
            try TestEnvironment.binary(),
            ["listen", "--secret", secret.text, "--port", "\(port)"] + options,
            environment: ["PATH": "/usr/bin:/bin"],
            outputPath: output,
            errorPath: output
        )
        defer { Task { try? await process.stop() } }
        let client = LoopbackHTTPClient(host: "127.0.0.1", port: port)
        let body =
            #"{"type":"order.succeeded","timestamp":"2026-12-05T00:00:00.000Z","data":{"id":"ord_x","status":"succeeded"}}"#
        @Sendable func deliver(signedWith key: WebhookSecret) async throws -> Int {
            let timestamp = Int64(Date().timeIntervalSince1970)
            let signature = MessageSignature.header(
                id: "msg_1",
                timestamp: timestamp,
                body: Array(body.utf8),
                secrets: [key]
            )
            return try await client.send(
                method: .POST,
                path: "/hooks",
                headers: [
                    ("webhook-id", "msg_1"), ("webhook-timestamp", "\(timestamp)"), ("webhook-signature", signature),
                    ("content-type", "application/json"),
                ],
                body: Array(body.utf8)
            ).status
        }
        try await eventually(within: .seconds(20), "listen ready") {
            (try? await client.send(method: .GET, path: "/")) != nil
        }
        #expect(try await deliver(signedWith: secret) == 503)
        #expect(try await deliver(signedWith: WebhookSecret.generate()) == 400)
        try await process.stop()
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }
}
