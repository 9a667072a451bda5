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
        let secret = WebhookSecret.generate()
        let port = try TestEnvironment.freePort()
        let output = try TestEnvironment.workDirectory().appendingPathComponent("listen-\(UUID().uuidString).log").path
        let process = try ChildProcess.start(
            try TestEnvironment.binary(),
            ["listen", "--secret", secret.text, "--port", "\(port)", "--status", "503"],
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
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("✓ order.succeeded ord_x (succeeded) msg_1, answered 503"), "\(text)")
        #expect(text.contains("✗ refused /hooks: no v1 signature matches the secret"), "\(text)")
    }
}
