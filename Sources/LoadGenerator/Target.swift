import Foundation
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import PayNotifyClient
import PaymentProviders
import Payments
import Synchronization

/// The server under load, reached only through its public HTTP API, and what the load generator
/// needs to talk to it as a merchant, a provider and an ops page would.
public struct Target: Sendable {
    public let host: String
    public let port: Int
    /// `host:port`, resolved once: connecting by name would resolve it again for every connection
    /// (NIO's resolver runs `getaddrinfo` off the event loop), which cost the load generator a
    /// thread hop per stream it opened.
    public let address: SocketAddress
    /// The local addresses streams connect from, in turn, when the server is on IPv4 loopback:
    /// 127.0.0.1 to 127.0.0.16. From one address, each connect searched the ports already
    /// connected to the server's address for a free one (`__inet_check_established`), a search
    /// that grows with every open stream and every closed one still in TIME_WAIT: measured, 18%
    /// of the load generator's CPU while it opened 19,000 streams. Checkout pages come from many
    /// addresses; a load generator on one machine spreads its connections over a few.
    let streamSources: [SocketAddress]
    private let nextStreamSource = SharedCounter()
    public let apiKey: String
    public let adminToken: String?
    /// The server's process, for its memory and CPU time (it must run on this machine).
    public let serverPID: Int32?
    public let group: MultiThreadedEventLoopGroup
    private let simulator: DeliverySimulator

    public init(
        host: String,
        port: Int,
        apiKey: String,
        sandboxSecret: String,
        adminToken: String?,
        serverPID: Int32?,
        group: MultiThreadedEventLoopGroup
    ) throws {
        self.host = host
        self.port = port
        self.address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        self.streamSources =
            if self.address.protocol == .inet, self.address.ipAddress?.hasPrefix("127.") == true {
                try (1...16).map { try SocketAddress(ipAddress: "127.0.0.\($0)", port: 0) }
            } else {
                []
            }
        self.apiKey = apiKey
        self.adminToken = adminToken
        self.serverPID = serverPID
        self.group = group
        var credentials = DeliverySimulator.Credentials()
        credentials.sandboxSecret = sandboxSecret
        self.simulator = DeliverySimulator(credentials: credentials)
    }

    public var client: LoopbackHTTPClient { LoopbackHTTPClient(host: self.host, port: self.port, group: self.group) }

    public var streams: StreamConnections {
        StreamConnections(
            host: self.host,
            port: self.port,
            address: self.address,
            sources: self.streamSources,
            nextSource: self.nextStreamSource,
            group: self.group
        )
    }

    /// An order the load generator made, with what its checkout page would be given.
    public struct Order: Sendable, Hashable {
        public let id: String
        public let token: String

        public var streamPath: String { "/v1/orders/\(self.id)/events?token=\(self.token)" }
    }

    /// Creates `count` sandbox orders through the merchant API on `concurrency` keep-alive connections.
    public func createOrders(_ count: Int, concurrency: Int) async throws -> [Order] {
        let orders = Shared<[Order]>([])
        try await self.onConnections(count: count, concurrency: concurrency) { connection, _ in
            let response = try await connection.send(
                method: .POST,
                path: "/v1/orders",
                headers: [("Authorization", "Bearer \(self.apiKey)"), ("Content-Type", "application/json")],
                body: Array(#"{"amount":1999,"currency":"CNY","provider":"sandbox","expires_in":86400}"#.utf8)
            )
            guard response.status == 201,
                let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                let id = json["id"] as? String, let token = json["stream_token"] as? String
            else { throw LoadError("creating an order failed: \(response.status) \(response.text)") }
            orders.withLock { $0.append(Order(id: id, token: token)) }
        }
        return orders.withLock { $0 }
    }

    /// A signed sandbox `progress` delivery for `order`, whose event will carry `stage`.
    public func progressWebhook(order: String, percent: Int, stage: String) throws -> (
        headers: [(String, String)], body: [UInt8]
    ) {
        let request = try self.simulator.delivery(
            provider: .sandbox,
            orderID: order,
            outcome: .progress,
            paid: Money(amount: 1999, currency: "CNY"),
            now: Date(),
            percent: percent,
            stage: stage
        )
        return (request.headers.map { ($0.key, $0.value) } + [("Content-Type", "application/json")], request.body)
    }

    /// Runs `body` for indexes `0..<count`, spread over `concurrency` keep-alive connections.
    public func onConnections(
        count: Int,
        concurrency: Int,
        _ body: @escaping @Sendable (inout LoopbackHTTPClient.Connection, Int) async throws -> Void
    ) async throws {
        let next = SharedCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, count) {
                group.addTask {
                    try await self.client.withConnection { connection in
                        while true {
                            let index = next.increment()
                            guard index < count else { return }
                            try await body(&connection, index)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The server's memory and CPU time now, if its pid was given.
    public func sample() throws -> ProcessSample? {
        try self.serverPID.map { try ProcessSample.read(pid: $0) }
    }
}
