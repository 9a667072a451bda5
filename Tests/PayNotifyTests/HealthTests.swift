import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PayNotify
import TestSupport
import Testing

@Suite("Health and readiness")
struct HealthTests {
    private func configuration(databaseURL: String) throws -> AppConfiguration {
        try TestConfiguration.make(databaseURL: databaseURL)
    }

    /// /healthz answers 200 while the process is up; /readyz 200 once the database and listener are.
    @Test func healthyAndReady() async throws {
        let database = try await TestDatabase.create()
        let app = try await buildApplication(configuration: try self.configuration(databaseURL: database.url))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
            }
            try await eventually("ready") {
                try await client.execute(uri: "/readyz", method: .get) { $0.status == .ok }
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(
                    String(buffer: response.body) == #"{"checks":{"database":"ok","listener":"ok"},"status":"ready"}"#
                )
            }
        }
    }

    /// /readyz turns 503 while the database is down and back to 200 once it returns.
    @Test func readinessFollowsTheDatabase() async throws {
        let cluster = try await TestCluster.start()
        let app = try await buildApplication(configuration: try self.configuration(databaseURL: cluster.url))
        try await app.test(.router) { client in
            try await eventually("ready") {
                try await client.execute(uri: "/readyz", method: .get) { $0.status == .ok }
            }
            try await cluster.stop()
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains(#""status":"unavailable""#))
            }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await cluster.restart()
            try await eventually(within: .seconds(20), "ready again") {
                try await client.execute(uri: "/readyz", method: .get) { $0.status == .ok }
            }
        }
    }

    /// Unknown routes and wrong methods answer with the JSON error shape.
    @Test func refusalsAreJSON() async throws {
        let database = try await TestDatabase.create()
        let app = try await buildApplication(configuration: try self.configuration(databaseURL: database.url))
        try await app.test(.router) { client in
            try await client.execute(uri: "/no/such/route", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                #expect(String(buffer: response.body) == #"{"error":{"code":"not_found","message":"Not Found"}}"#)
            }
        }
    }
}
