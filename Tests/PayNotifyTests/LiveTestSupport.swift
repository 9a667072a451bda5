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

/// An order as the merchant API created it: what a checkout page is given.
struct CreatedOrder: Sendable {
    let id: String
    let token: String

    var streamPath: String { "/v1/orders/\(self.id)/events?token=\(self.token)" }
}

/// A test's failure to talk to the server as expected.
struct UnexpectedAnswer: Error, CustomStringConvertible {
    let description: String
}

extension LoopbackHTTPClient {
    /// Creates a sandbox order for 19.99 CNY.
    func createOrder() async throws -> CreatedOrder {
        let response = try await self.send(
            method: .POST,
            path: "/v1/orders",
            headers: [("Authorization", "Bearer \(TestConfiguration.apiKey)"), ("Content-Type", "application/json")],
            body: Array(#"{"amount":1999,"currency":"CNY","provider":"sandbox"}"#.utf8)
        )
        guard response.status == 201,
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let id = json["id"] as? String, let token = json["stream_token"] as? String
        else { throw UnexpectedAnswer(description: "create failed: \(response.status) \(response.text)") }
        return CreatedOrder(id: id, token: token)
    }

    /// Sends a signed sandbox delivery of `type` (`processing`, `progress`, `succeeded`…) for an order.
    @discardableResult
    func sandbox(
        _ type: String,
        order: String,
        eventID: String = UUID().uuidString,
        progress: Int? = nil
    ) async throws -> Response {
        var fields = #""id":"\#(eventID)","type":"payment.\#(type)","order_id":"\#(order)""#
        if type == "succeeded" { fields += #","amount":1999,"currency":"CNY""# }
        if let progress { fields += #","progress":\#(progress),"stage":"paying""# }
        let body = "{\(fields)}"
        let signature = TestConfiguration.sandboxSignature(body, timestamp: Int(Date().timeIntervalSince1970))
        return try await self.send(
            method: .POST,
            path: "/v1/webhooks/sandbox",
            headers: [("Sandbox-Signature", signature), ("Content-Type", "application/json")],
            body: Array(body.utf8)
        )
    }

    /// Like ``sandbox(_:order:eventID:progress:)``, retried as a provider would while the answer is a 5xx
    /// or the connection fails; the final answer must be a 2xx.
    func sandboxUntilAccepted(_ type: String, order: String, progress: Int? = nil) async throws {
        let eventID = UUID().uuidString
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let response = try? await self.sandbox(type, order: order, eventID: eventID, progress: progress) {
                if (200..<300).contains(response.status) { return }
                guard response.status >= 500 else {
                    throw UnexpectedAnswer(description: "webhook refused: \(response.status) \(response.text)")
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw UnexpectedAnswer(description: "webhook \(type) for \(order) not accepted within 60 s")
    }
}

extension EventStreamReader {
    /// Reads events up to and including `finish`; throws if the stream ends or breaks before it.
    mutating func eventsThroughFinish() async throws -> [EventStreamParser.Event] {
        var events: [EventStreamParser.Event] = []
        while let event = try await self.nextEvent() {
            events.append(event)
            if event.name == "finish" { return events }
        }
        throw UnexpectedAnswer(description: "the stream ended before finish, after \(events.map(\.name))")
    }
}

extension EventStreamParser.Event {
    /// The event's id as the log's id.
    var logID: Int64? { self.id.flatMap { Int64($0) } }

    /// The data as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(self.data.utf8))) as? [String: Any] ?? [:]
    }
}

/// The ids of an order's log, oldest first.
func logIDs(of orderID: String, in database: TestDatabase) async throws -> [Int64] {
    try await database.withConnection { connection in
        try connection.query("SELECT id FROM order_events WHERE order_id = $1 ORDER BY id", [orderID]).map {
            try $0.decode(Int64.self, at: 0)
        }
    }
}
