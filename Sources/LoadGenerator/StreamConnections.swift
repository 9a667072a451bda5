import Glibc
public import NIOCore
import NIOHTTP1
import NIOPosix
public import PayNotifyClient

/// What happens on one stream, reported from its event loop.
public struct StreamCallbacks: Sendable {
    /// The answer's status arrived (200 for a stream).
    public var opened: @Sendable (_ status: Int) -> Void = { _ in }
    public var received: @Sendable (_ item: EventStreamParser.Item) -> Void = { _ in }
    /// The connection closed, whoever closed it.
    public var closed: @Sendable () -> Void = {}

    public init() {}
}

/// Opens many `text/event-stream` connections cheaply: each is one NIO channel with one handler
/// that parses the stream as it arrives; no task, no buffer beyond the parser's line.
public struct StreamConnections: Sendable {
    public let host: String
    public let port: Int
    /// Where to connect: `host:port`, resolved by the caller once for all connections.
    public let address: SocketAddress
    /// Local addresses the connections are made from, in turn; empty for the system's choice.
    let sources: [SocketAddress]
    let nextSource: SharedCounter
    let group: any EventLoopGroup

    public init(host: String, port: Int, address: SocketAddress, group: any EventLoopGroup) {
        self.init(host: host, port: port, address: address, sources: [], nextSource: SharedCounter(), group: group)
    }

    init(
        host: String,
        port: Int,
        address: SocketAddress,
        sources: [SocketAddress],
        nextSource: SharedCounter,
        group: any EventLoopGroup
    ) {
        self.host = host
        self.port = port
        self.address = address
        self.sources = sources
        self.nextSource = nextSource
        self.group = group
    }

    /// Connects and sends `GET path`; the callbacks report the rest. Close the returned channel to
    /// hang up.
    public func open(path: String, headers: [(String, String)] = [], callbacks: StreamCallbacks) async throws
        -> any Channel
    {
        try await self.connect(path: path, headers: headers, callbacks: callbacks).get()
    }

    /// ``open(path:headers:callbacks:)`` without a task: the connection, when it is made.
    func connect(path: String, headers: [(String, String)] = [], callbacks: StreamCallbacks)
        -> EventLoopFuture<any Channel>
    {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "\(self.host):\(self.port)")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let request = head
        var bootstrap = ClientBootstrap(group: self.group)
        if !self.sources.isEmpty {
            // The port is still chosen at connect time, for the whole address pair
            // (IP_BIND_ADDRESS_NO_PORT), not reserved by the bind.
            bootstrap = bootstrap.channelOption(
                ChannelOptions.Types.SocketOption(level: .ip, name: .init(rawValue: IP_BIND_ADDRESS_NO_PORT)),
                value: 1
            )
            .bind(to: self.sources[self.nextSource.increment() % self.sources.count])
        }
        return
            bootstrap
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        StreamHandler(request: request, callbacks: callbacks)
                    )
                }
            }
            .connect(to: self.address)
    }
}

/// Sends the request once connected, then parses the answer's body as a stream.
private final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let callbacks: StreamCallbacks
    private var parser = EventStreamParser()

    init(request: HTTPRequestHead, callbacks: StreamCallbacks) {
        self.request = request
        self.callbacks = callbacks
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(.head(self.request)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.callbacks.opened(Int(head.status.code))
        case .body(let buffer):
            for item in self.parser.feed(buffer.readableBytesView) { self.callbacks.received(item) }
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.callbacks.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
