public import NIOCore
public import NIOHTTP1
public import NIOPosix

/// A small HTTP/1.1 client for talking to a PayNotify server over plain TCP (no TLS), one request per
/// connection: what `paynotify simulate`, the load generator and the end-to-end tests use, without
/// pulling a full client library into the release binary.
///
/// ``send(method:path:headers:body:)`` reads a whole answer; ``stream(path:headers:deadline:receiveBufferSize:_:)``
/// reads a `text/event-stream` incrementally, item by item, as a browser's EventSource would.
public struct LoopbackHTTPClient: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: [UInt8]

        public var text: String { String(decoding: self.body, as: UTF8.self) }
    }

    public let host: String
    public let port: Int
    private let group: any EventLoopGroup

    public init(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.group = group
    }

    /// Sends one request on a connection of its own and reads the whole answer.
    public func send(
        method: HTTPMethod,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8] = []
    ) async throws -> Response {
        try await self.withConnection { connection in
            try await connection.send(method: method, path: path, headers: headers, body: body)
        }
    }

    /// Opens one keep-alive connection for `body`'s requests, one after another, and closes it
    /// when `body` returns: what a provider or a load generator reusing connections does.
    public func withConnection<T: Sendable>(_ body: (inout Connection) async throws -> T) async throws -> T {
        let channel = try await self.connect(receiveBufferSize: nil)
        return try await channel.executeThenClose { inbound, outbound in
            var connection = Connection(client: self, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&connection)
        }
    }

    /// A keep-alive connection: requests go out one at a time, each answer read whole.
    public struct Connection {
        let client: LoopbackHTTPClient
        var inbound: Inbound.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

        public mutating func send(
            method: HTTPMethod,
            path: String,
            headers: [(String, String)] = [],
            body: [UInt8] = []
        ) async throws -> Response {
            try await self.client.writeRequest(
                method: method,
                path: path,
                headers: headers,
                body: body,
                to: self.outbound
            )
            let head = try await LoopbackHTTPClient.readHead(&self.inbound)
            return Response(
                status: Int(head.status.code),
                headers: head.headers,
                body: try await LoopbackHTTPClient.readBody(&self.inbound)
            )
        }

        /// Opens a `GET` stream on this connection and hands `body` a reader of its items; once
        /// `body` has read the stream to its end, the connection takes the next request.
        public mutating func stream<T>(
            path: String,
            headers: [(String, String)] = [],
            _ body: (inout EventStreamReader) async throws -> T
        ) async throws -> T {
            try await self.client.writeRequest(
                method: .GET,
                path: path,
                headers: [("Accept", "text/event-stream")] + headers,
                body: [],
                to: self.outbound
            )
            let head = try await LoopbackHTTPClient.readHead(&self.inbound)
            var reader = EventStreamReader(status: Int(head.status.code), headers: head.headers, iterator: self.inbound)
            defer { self.inbound = reader.iterator }
            return try await body(&reader)
        }
    }

    /// Opens a `GET` stream and hands `body` a reader of its items; the connection closes when `body`
    /// returns.
    ///
    /// - Parameters:
    ///   - deadline: the connection is closed at this instant whatever happens, so a test or benchmark
    ///     that waits for an event that never comes ends instead of hanging.
    ///   - receiveBufferSize: a small kernel receive buffer (`SO_RCVBUF`), for imitating a client that
    ///     stops reading: the server's writes then block soon after the reader stops.
    public func stream<T: Sendable>(
        path: String,
        headers: [(String, String)] = [],
        deadline: NIODeadline = .now() + .seconds(60),
        receiveBufferSize: Int? = nil,
        _ body: (inout EventStreamReader) async throws -> T
    ) async throws -> T {
        let channel = try await self.connect(receiveBufferSize: receiveBufferSize)
        let closer = channel.channel.eventLoop.scheduleTask(deadline: deadline) { channel.channel.close(promise: nil) }
        defer { closer.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var connection = Connection(client: self, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await connection.stream(path: path, headers: headers, body)
        }
    }

    // MARK: Plumbing

    typealias Channel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    typealias Inbound = NIOAsyncChannelInboundStream<HTTPClientResponsePart>

    private func connect(receiveBufferSize: Int?) async throws -> Channel {
        var bootstrap = ClientBootstrap(group: self.group).connectTimeout(.seconds(5))
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        return try await bootstrap.connect(host: self.host, port: self.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try Channel(wrappingChannelSynchronously: channel)
            }
        }
    }

    fileprivate func writeRequest(
        method: HTTPMethod,
        path: String,
        headers: [(String, String)],
        body: [UInt8],
        to outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) async throws {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(self.host):\(self.port)")
        if !body.isEmpty || method == .POST || method == .PUT {
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try await outbound.write(.head(head))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
    }

    fileprivate static func readHead(_ iterator: inout Inbound.AsyncIterator) async throws -> HTTPResponseHead {
        while let part = try await iterator.next() {
            if case .head(let head) = part, head.status != .continue { return head }
        }
        throw ClientError(description: "the server closed the connection before answering")
    }

    fileprivate static func readBody(_ iterator: inout Inbound.AsyncIterator) async throws -> [UInt8] {
        var body: [UInt8] = []
        while let part = try await iterator.next() {
            switch part {
            case .head: continue
            case .body(let chunk): body.append(contentsOf: chunk.readableBytesView)
            case .end: return body
            }
        }
        return body
    }

    public struct ClientError: Error, CustomStringConvertible {
        public let description: String
    }
}

/// The answer to a stream request: its status and headers, then its items as they arrive.
public struct EventStreamReader {
    public let status: Int
    public let headers: HTTPHeaders
    fileprivate var iterator: LoopbackHTTPClient.Inbound.AsyncIterator
    private var parser = EventStreamParser()
    private var pending: [EventStreamParser.Item] = []
    private var pendingIndex = 0

    init(status: Int, headers: HTTPHeaders, iterator: LoopbackHTTPClient.Inbound.AsyncIterator) {
        self.status = status
        self.headers = headers
        self.iterator = iterator
    }

    /// The next event, comment or `retry:`; `nil` when the server ended the response.
    ///
    /// - Throws: when the connection breaks or the deadline closed it.
    public mutating func next() async throws -> EventStreamParser.Item? {
        while self.pendingIndex == self.pending.count {
            guard let part = try await self.iterator.next() else {
                throw LoopbackHTTPClient.ClientError(description: "the connection closed mid-stream")
            }
            switch part {
            case .head: continue
            case .body(let chunk):
                self.pending = self.parser.feed(chunk.readableBytesView)
                self.pendingIndex = 0
            case .end: return nil
            }
        }
        defer { self.pendingIndex += 1 }
        return self.pending[self.pendingIndex]
    }

    /// The next event, skipping comments and `retry:`; `nil` at the end of the response.
    public mutating func nextEvent() async throws -> EventStreamParser.Event? {
        while let item = try await self.next() {
            if case .event(let event) = item { return event }
        }
        return nil
    }

    /// The rest of the body, unparsed: for answers that are not streams (a JSON error, say).
    public mutating func remainingBody() async throws -> [UInt8] {
        try await LoopbackHTTPClient.readBody(&self.iterator)
    }
}
