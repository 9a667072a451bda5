public import Foundation
import NIOHTTP1
public import PayNotifyClient
import Postgres

/// An order as the merchant API created it: what a checkout page is given.
public struct CreatedOrder: Sendable {
    public let id: String
    public let token: String

    public init(id: String, token: String) {
        self.id = id
        self.token = token
    }

    public var streamPath: String { "/v1/orders/\(self.id)/events?token=\(self.token)" }
}

/// A test's failure to talk to the server as expected.
public struct UnexpectedAnswer: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

extension LoopbackHTTPClient {
    /// Creates an order for 19.99 CNY, paid through `provider`.
    public func createOrder(provider: String = "sandbox") async throws -> CreatedOrder {
        let response = try await self.send(
            method: .POST,
            path: "/v1/orders",
            headers: [("Authorization", "Bearer \(TestSecrets.apiKey)"), ("Content-Type", "application/json")],
            body: Array(#"{"amount":1999,"currency":"CNY","provider":"\#(provider)"}"#.utf8)
        )
        guard response.status == 201,
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let id = json["id"] as? String, let token = json["stream_token"] as? String
        else { throw UnexpectedAnswer(description: "create failed: \(response.status) \(response.text)") }
        return CreatedOrder(id: id, token: token)
    }

    /// Sends a signed sandbox delivery of `type` (`processing`, `progress`, `succeeded`…) for an order.
    @discardableResult
    public func sandbox(
        _ type: String,
        order: String,
        eventID: String = UUID().uuidString,
        progress: Int? = nil
    ) async throws -> Response {
        var fields = #""id":"\#(eventID)","type":"payment.\#(type)","order_id":"\#(order)""#
        if type == "succeeded" { fields += #","amount":1999,"currency":"CNY""# }
        if let progress { fields += #","progress":\#(progress),"stage":"paying""# }
        let body = "{\(fields)}"
        let signature = TestSecrets.sandboxSignature(body, timestamp: Int(Date().timeIntervalSince1970))
        return try await self.send(
            method: .POST,
            path: "/v1/webhooks/sandbox",
            headers: [("Sandbox-Signature", signature), ("Content-Type", "application/json")],
            body: Array(body.utf8)
        )
    }

    /// Sends a sandbox delivery with a wrong signature: refused, and raised as a `bad_signature` alert.
    @discardableResult
    public func forgedSandbox() async throws -> Response {
        try await self.send(
            method: .POST,
            path: "/v1/webhooks/sandbox",
            headers: [("Sandbox-Signature", "t=1,v1=00"), ("Content-Type", "application/json")],
            body: Array("{}".utf8)
        )
    }

    /// Like ``sandbox(_:order:eventID:progress:)``, retried as a provider would while the answer is a 5xx
    /// or the connection fails; the final answer must be a 2xx.
    public func sandboxUntilAccepted(_ type: String, order: String, progress: Int? = nil) async throws {
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

extension LoopbackHTTPClient {
    /// Sends one delivery to every order at once, each retried as a provider would through an outage.
    public func sandboxToEvery(_ orders: [CreatedOrder], _ type: String, progress: Int? = nil) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for order in orders {
                group.addTask { try await self.sandboxUntilAccepted(type, order: order.id, progress: progress) }
            }
            try await group.waitForAll()
        }
    }
}

extension EventStreamReader {
    /// Reads events up to and including `finish`; throws if the stream ends or breaks before it.
    public mutating func eventsThroughFinish() async throws -> [EventStreamParser.Event] {
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
    public var logID: Int64? { self.id.flatMap { Int64($0) } }

    /// The data as a JSON object.
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(self.data.utf8))) as? [String: Any] ?? [:]
    }
}

/// The ids of an order's log, oldest first.
public func logIDs(of orderID: String, in database: TestDatabase) async throws -> [Int64] {
    try await database.withConnection { connection in
        try connection.query("SELECT id FROM order_events WHERE order_id = $1 ORDER BY id", [orderID]).map {
            try $0.decode(Int64.self, at: 0)
        }
    }
}
