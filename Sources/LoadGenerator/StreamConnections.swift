import Glibc
public import NIOCore
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
/// that decodes the answer (``StreamResponseDecoder``) and parses the stream as it arrives; no
/// task, no buffer beyond the parser's line.
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
        let fields = [("Host", "\(self.host):\(self.port)"), ("Accept", "text/event-stream")] + headers
        let request = "GET \(path) HTTP/1.1\r\n" + fields.map { "\($0): \($1)\r\n" }.joined() + "\r\n"
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
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let callbacks: StreamCallbacks
    private var decoder = StreamResponseDecoder()
    private var parser = EventStreamParser()

    init(request: String, callbacks: StreamCallbacks) {
        self.request = request
        self.callbacks = callbacks
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: self.request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try self.decoder.feed(self.unwrapInboundIn(data)) { part in
                switch part {
                case .head(let status):
                    self.callbacks.opened(status)
                case .body(let buffer):
                    for item in self.parser.feed(buffer.readableBytesView) { self.callbacks.received(item) }
                case .end:
                    context.close(promise: nil)
                }
            }
        } catch {
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
