import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PayNotify
import PayNotifyClient
import Postgres
import TestSupport

/// Runs a test against the real application serving on a loopback port, on `database` (a fresh one
/// when `nil`), and hands it a client for that port. Shuts the server down gracefully afterwards.
@discardableResult
func withLiveApp<Value: Sendable>(
    overrides: [String: String] = [:],
    database: TestDatabase? = nil,
    _ body: @Sendable (LoopbackHTTPClient, TestDatabase) async throws -> Value
) async throws -> Value {
    let database = if let database { database } else { try await TestDatabase.create() }
    let configuration = try TestConfiguration.make(databaseURL: database.url, overrides: overrides)
    let app = try await buildApplication(configuration: configuration)
    return try await app.test(.live) { client in
        try await body(LoopbackHTTPClient(host: "localhost", port: client.port!), database)
    }
}
