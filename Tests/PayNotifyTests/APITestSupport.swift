import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PayNotify
import TestSupport

/// Runs a test against the real application on a fresh database, through the router.
func withApp(
    overrides: [String: String] = [:],
    now: @escaping @Sendable () -> Date = { Date() },
    _ body: @Sendable (any TestClientProtocol, TestDatabase) async throws -> Void
) async throws {
    let database = try await TestDatabase.create()
    let configuration = try TestConfiguration.make(databaseURL: database.url, overrides: overrides)
    let app = try await buildApplication(configuration: configuration, now: now)
    try await app.test(.router) { client in try await body(client, database) }
}

extension TestResponse {
    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(String(buffer: self.body).utf8))) as? [String: Any] ?? [:]
    }

    /// `error.code` of a JSON error body.
    var errorCode: String? { (self.json["error"] as? [String: Any])?["code"] as? String }
}

extension TestClientProtocol {
    /// A merchant API call with the test key and a JSON body.
    func merchant(
        _ method: HTTPRequest.Method,
        _ uri: String,
        json: String? = nil,
        key: String? = TestConfiguration.apiKey,
        headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        if json != nil { headers[.contentType] = "application/json" }
        return try await self.execute(
            uri: uri,
            method: method,
            headers: headers,
            body: json.map { ByteBuffer(string: $0) }
        )
    }

    /// Creates a sandbox order for 19.99 CNY and returns its JSON.
    func createOrder(_ extra: String = "") async throws -> [String: Any] {
        let response = try await self.merchant(
            .post,
            "/v1/orders",
            json: #"{"amount":1999,"currency":"CNY","provider":"sandbox"\#(extra)}"#
        )
        precondition(response.status == .created, "create failed: \(String(buffer: response.body))")
        return response.json
    }

    /// Posts a signed sandbox webhook.
    func sandboxWebhook(
        _ body: String,
        timestamp: Int = Int(Date().timeIntervalSince1970),
        secret: String = TestConfiguration.sandboxSecret
    )
        async throws -> TestResponse
    {
        try await self.execute(
            uri: "/v1/webhooks/sandbox",
            method: .post,
            headers: [
                HTTPField.Name("Sandbox-Signature")!: TestConfiguration.sandboxSignature(
                    body,
                    secret: secret,
                    timestamp: timestamp
                ),
                .contentType: "application/json",
            ],
            body: ByteBuffer(string: body)
        )
    }
}
