import AsyncHTTPClient
import Foundation
import Glibc
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
import NetworkAddresses

/// Sends one attempt of one message to a merchant's endpoint, signed (Standard Webhooks), and says
/// what came back. It never throws: every failure is an answer (``DeliveryResponse``).
///
/// Where the request may go is checked on the address it connects to, not only on the name: the
/// host is resolved here, every address is checked against the ``AddressPolicy``, and the request
/// is pinned to the checked address (async-http-client's `dnsOverride`, TLS still verifying the
/// name), so a name that resolves elsewhere a moment later (DNS rebinding) cannot reach inside.
/// One client is kept per name and address, so connections are pooled.
public actor WebhookSender {
    public struct Settings: Sendable {
        public var policy: AddressPolicy
        public var allowHTTP: Bool
        public var timeout: Duration
        public var userAgent: String
        /// Endpoints whose certificates are signed by this CA too (tests; a private CA).
        public var additionalTrustRoots: [String]
        /// Connections to one host: as many as attempts may be in flight, because many endpoints
        /// can share a host (a platform that hosts its customers' webhooks), and requests beyond
        /// the HTTP client's own limit (8) would queue behind each other and time out.
        public var connectionsPerHost: Int

        public init(
            policy: AddressPolicy,
            allowHTTP: Bool,
            timeout: Duration = .seconds(15),
            userAgent: String = "PayNotify/1.0",
            additionalTrustRoots: [String] = [],
            connectionsPerHost: Int
        ) {
            self.policy = policy
            self.allowHTTP = allowHTTP
            self.timeout = timeout
            self.userAgent = userAgent
            self.additionalTrustRoots = additionalTrustRoots
            self.connectionsPerHost = connectionsPerHost
        }
    }

    /// The most of a response body read; the first ``storedBodyBytes`` of it are kept.
    public static let maximumBodyBytes = 64 * 1_024
    public static let storedBodyBytes = 1_024

    private let settings: Settings
    private let group: any EventLoopGroup
    private var clients: [String: HTTPClient] = [:]
    private static let maximumClients = 256

    public init(settings: Settings, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.settings = settings
        self.group = eventLoopGroup
    }

    /// Why a delivery to `url` would be refused now (the URL, or an address its host resolves
    /// to), or `nil`.
    public func refusal(of url: String) async -> String? {
        switch await self.destination(of: url) {
        case .success: nil
        case .failure(let error): error.reason
        }
    }

    /// Sends `payload` to `url` as message `id`, signed with `secrets` at `timestamp`.
    public func send(url: String, id: String, payload: String, secrets: [WebhookSecret], timestamp: Int64) async
        -> DeliveryResponse
    {
        let start = ContinuousClock.now
        func failure(_ error: String) -> DeliveryResponse {
            DeliveryResponse(
                statusCode: nil,
                body: nil,
                error: error,
                retryAfter: nil,
                duration: start.duration(to: .now)
            )
        }
        let client: HTTPClient
        switch await self.destination(of: url) {
        case .failure(let error): return failure("refused: \(error.reason)")
        case .success(let destination): client = self.client(for: destination)
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: self.settings.userAgent)
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        let body = Array(payload.utf8)
        request.headers.add(
            name: "webhook-signature",
            value: MessageSignature.header(id: id, timestamp: timestamp, body: body, secrets: secrets)
        )
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, deadline: .now() + TimeAmount(self.settings.timeout))
            var received: [UInt8] = []
            for try await chunk in response.body {
                received.append(contentsOf: chunk.readableBytesView.prefix(Self.maximumBodyBytes - received.count))
                if received.count >= Self.maximumBodyBytes { break }
            }
            let stored = String(decoding: received.prefix(Self.storedBodyBytes), as: UTF8.self)
            return DeliveryResponse(
                statusCode: Int(response.status.code),
                body: stored,
                error: nil,
                retryAfter: response.headers.first(name: "retry-after").flatMap(Int.init).map { .seconds(max(0, $0)) },
                duration: start.duration(to: .now)
            )
        } catch {
            return failure(Self.describe(error))
        }
    }

    /// Shuts every client down; the sender is not used after.
    public func shutdown() async {
        for client in self.clients.values { try? await client.shutdown() }
        self.clients = [:]
    }

    // MARK: Destinations

    private struct Destination: Hashable {
        let host: String
        /// The checked address to connect to; `nil` when the host is an address itself.
        let address: IPAddress?
    }

    private func destination(of url: String) async -> Result<Destination, EndpointURLError> {
        let checked: EndpointURL
        switch EndpointURL.check(url, allowHTTP: self.settings.allowHTTP) {
        case .failure(let error): return .failure(error)
        case .success(let url): checked = url
        }
        if let literal = IPAddress(checked.host) {
            if let refusal = self.settings.policy.refusal(of: literal) { return .failure(.init("goes to \(refusal)")) }
            return .success(Destination(host: checked.host, address: nil))
        }
        let addresses: [IPAddress]
        do {
            addresses = try await Self.resolve(checked.host)
        } catch {
            return .failure(.init("has a host that does not resolve (\(checked.host))"))
        }
        for address in addresses {
            if let refusal = self.settings.policy.refusal(of: address) {
                return .failure(.init("has a host that resolves to \(refusal)"))
            }
        }
        guard let first = addresses.first else { return .failure(.init("has a host with no address")) }
        return .success(Destination(host: checked.host, address: first))
    }

    private func client(for destination: Destination) -> HTTPClient {
        let key = "\(destination.host)|\(destination.address?.description ?? "")"
        if let client = self.clients[key] { return client }
        if self.clients.count >= Self.maximumClients, let (oldKey, old) = self.clients.first {
            self.clients[oldKey] = nil
            Task { try? await old.shutdown() }
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = self.settings.additionalTrustRoots.map { .file($0) }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            // The attempt's deadline bounds it whole; no shorter pause between reads cuts it first.
            timeout: .init(connect: .seconds(10), read: TimeAmount(self.settings.timeout))
        )
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: self.settings.connectionsPerHost
        )
        // A connection that cannot be made fails the attempt at once, to be retried on the
        // schedule: left on, the client would keep trying until the attempt's deadline, so an
        // endpoint that is down would hold its slots for the whole timeout on every attempt.
        configuration.connectionPool.retryConnectionEstablishment = false
        if let address = destination.address {
            configuration.dnsOverride = [destination.host: address.description]
        }
        let client = HTTPClient(eventLoopGroupProvider: .shared(self.group), configuration: configuration)
        self.clients[key] = client
        return client
    }

    /// Every address the name resolves to (getaddrinfo, on NIO's blocking-IO pool).
    private static func resolve(_ host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0, let list else { throw ResolutionFailed() }
            defer { freeaddrinfo(list) }
            var addresses: [IPAddress] = []
            var entry: UnsafeMutablePointer<addrinfo>? = list
            while let current = entry {
                if let address = IPAddress(socketAddress: current.pointee.ai_addr, family: current.pointee.ai_family) {
                    if !addresses.contains(address) { addresses.append(address) }
                }
                entry = current.pointee.ai_next
            }
            return addresses
        }
    }

    private struct ResolutionFailed: Error {}

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            default: return "\(error)"
            }
        }
        return String(describing: error)
    }
}

/// What one attempt came to: a status with the first bytes of the body, or why none came.
public struct DeliveryResponse: Sendable, Hashable {
    public let statusCode: Int?
    /// The first ``WebhookSender/storedBodyBytes`` of the body, as text.
    public let body: String?
    public let error: String?
    /// The endpoint's `Retry-After`, in seconds.
    public let retryAfter: Duration?
    public let duration: Duration

    public var succeeded: Bool { self.statusCode.map { (200..<300).contains($0) } ?? false }
}

extension IPAddress {
    init?(socketAddress: UnsafeMutablePointer<sockaddr>?, family: Int32) {
        guard let socketAddress else { return nil }
        switch family {
        case AF_INET:
            let bytes = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
            }
            self.init(v6Bytes: Array(repeating: 0, count: 10) + [0xff, 0xff] + bytes)
        case AF_INET6:
            let bytes = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
            }
            self.init(v6Bytes: bytes)
        default:
            return nil
        }
    }
}
