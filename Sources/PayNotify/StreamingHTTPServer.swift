import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// How the server answers a stream request without Hummingbird's connection machinery
/// (``StreamingHTTP1Channel``): which request heads are stream requests, and the application's
/// own answer to a request (its router and middleware, which the stream routes live in).
struct StreamRequests: Sendable {
    let matches: @Sendable (HTTPRequest) -> Bool
    private let responder: @Sendable (Request, AppRequestContext) async throws -> Response
    private let serverName: String?
    private let logger: Logger
    private let date = HTTPDate()

    init<Responder: HTTPResponder>(
        matches: @escaping @Sendable (HTTPRequest) -> Bool,
        responder: Responder,
        serverName: String?,
        logger: Logger
    ) where Responder.Context == AppRequestContext {
        self.matches = matches
        self.responder = { request, context in try await responder.respond(to: request, context: context) }
        self.serverName = serverName
        self.logger = logger
    }

    /// The response, with the headers Hummingbird's server adds to its own (`Date`, `Server`), and
    /// its bare `500` for an error no middleware answered (``JSONErrorMiddleware`` answers them all).
    func respond(to request: Request, on channel: any Channel) async -> Response {
        let context = AppRequestContext(source: .init(channel: channel, logger: self.logger))
        var response: Response
        do {
            response = try await self.responder(request, context)
        } catch {
            self.logger.debug("unanswered error", metadata: ["error": "\(error)"])
            response = Response(status: .internalServerError)
        }
        response.headers[.date] = self.date.now()
        if let serverName { response.headers[.server] = serverName }
        return response
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server, made lighter for connections that carry a stream
    /// (``StreamingHTTP1Channel``).
    static func http1(configuration: HTTP1Channel.Configuration, streams: StreamRequests) -> HTTPServerBuilder {
        .init { responder in
            StreamingHTTP1Channel(
                http1: HTTP1Channel(
                    responder: { request, writer, channel in
                        guard streams.matches(request.head) else {
                            try await responder(request, writer, channel)
                            return
                        }
                        // A stream on a connection Hummingbird serves already (an earlier request
                        // on it was not a stream's): answered in a child task, whose slabs go when
                        // the stream is live (see ``StreamingHTTP1Channel``).
                        let handOver = WriterHandOver(writer)
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { try await responder(request, handOver.take(), channel) }
                            try await group.waitForAll()
                        }
                    },
                    configuration: configuration
                ),
                streams: streams
            )
        }
    }
}

/// Hummingbird's `HTTP1Channel`, made light for connections that hold a stream for a long time.
/// Each change was measured with the load generator and heaptrack (BENCHMARKS.md, items 8, 9, 11).
///
/// - **A stream's connection holds no task and no `NIOAsyncChannel`.** Hummingbird serves every
///   connection from a task that reads it through a `NIOAsyncChannel` until it closes; a Swift
///   task keeps its allocator's slabs until it ends, so each open stream kept that task's memory.
///   Here the connection's pipeline ends in a ``RequestDispatcher``, and Hummingbird takes the
///   connection over only when a request that is not a stream's comes: the connection's task
///   waits for that, and ends when the first request is a stream's. A stream request is
///   answered by the application's own router (``StreamRequests``) in a short task that ends as
///   soon as the stream is live; from then on the stream is its connection's NIO handlers and its
///   entry in the hub. Once Hummingbird has a connection it keeps it; a stream on it is answered
///   in a child task of the connection's task, which ends when the stream is live.
/// - **Reads start with a 512-byte buffer** instead of NIO's 2,048: each connection keeps its last
///   receive buffer for reuse, and a stream's connection reads one request head and then nothing.
///   The buffer grows for larger requests (a webhook's body) as NIO's adaptive allocator does.
struct StreamingHTTP1Channel: ServerChildChannel {
    /// Who answers a connection's requests: Hummingbird, or the application for stream requests.
    /// One for the server, which every connection's dispatcher refers to.
    final class Answerers: Sendable {
        let http1: HTTP1Channel
        let streams: StreamRequests

        init(http1: HTTP1Channel, streams: StreamRequests) {
            self.http1 = http1
            self.streams = streams
        }
    }

    let answerers: Answerers

    init(http1: HTTP1Channel, streams: StreamRequests) {
        self.answerers = Answerers(http1: http1, streams: streams)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<StreamingConnection> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)
            )
            // The pipeline Hummingbird's HTTP1Channel builds, with its configuration.
            let configuration = self.answerers.http1.configuration
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: limits
            )
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(configuration.additionalChannelHandlers())
            try pipeline.addHandler(
                HTTPConnectionStateHandler(
                    idleTimeout: configuration.idleTimeout.map { .nanoseconds($0.nanoseconds) },
                    logger: logger
                )
            )
            let handOver = channel.eventLoop.makePromise(of: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?.self)
            do {
                try pipeline.addHandler(
                    RequestDispatcher(answerers: self.answerers, logger: logger, handOver: handOver)
                )
            } catch {
                handOver.succeed(nil)  // (no promise is left unfulfilled)
                throw error
            }
            return StreamingConnection(channel: channel, hummingbird: handOver.futureResult)
        }
    }

    func handle(value: StreamingConnection, logger: Logger) async {
        // The future is never failed: `nil` when the first request was a stream's or none came.
        guard let asyncChannel = try? await value.hummingbird.get() else { return }
        await self.answerers.http1.handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// A connection as the server's task for it sees it: the connection, and Hummingbird's side of it
/// if its first request needs Hummingbird.
struct StreamingConnection: ServerChildChannelValue {
    let channel: any Channel
    let hummingbird: EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>
}

/// The end of a connection's pipeline until Hummingbird takes the connection over. It answers
/// stream requests itself (the application's router answers, in a task that ends with the
/// answer or when the stream is live), one at a time and in order, and hands the connection to
/// Hummingbird at the first request that is not a stream's: through the connection's task if it
/// still waits (the first request), else in a new task. It does the connection-level work
/// Hummingbird's read loop would: `400` and close on a malformed request, close when the client
/// closes its side between requests or after a request that said `Connection: close`.
///
/// Requests that come while one is being answered (pipelined) wait, and the connection is not
/// read meanwhile. A request that comes while a stream is live is answered at once, inside the
/// stream's response, as Hummingbird does on the connections it serves: no browser or proxy
/// sends a request behind a response that has not ended, and it garbles that connection only.
private final class RequestDispatcher: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    typealias AsyncConnection = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    private enum State {
        /// Between requests.
        case idle
        /// A stream request's head came; its end has not. (Boxed: the handler lives as long as
        /// its connection, and the state would otherwise hold a request head's room throughout.)
        indirect case receiving(HTTPRequest)
        /// A stream request is being answered.
        case answering(closeAfter: Bool)
        /// Hummingbird serves the connection from here on.
        case hummingbird
    }

    private let answerers: StreamingHTTP1Channel.Answerers
    private let logger: Logger
    /// The connection's task waits on this until the first request: Hummingbird's side, or `nil`.
    private var handOver: EventLoopPromise<AsyncConnection?>?
    private var state = State.idle
    /// Pipelined requests; an array, which allocates nothing while empty (NIO's `CircularBuffer`
    /// allocates room for 16 at once, on every connection).
    private var waiting: [HTTPRequestPart] = []
    private var readHeld = false

    init(
        answerers: StreamingHTTP1Channel.Answerers,
        logger: Logger,
        handOver: EventLoopPromise<AsyncConnection?>
    ) {
        self.answerers = answerers
        self.logger = logger
        self.handOver = handOver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.receive(self.unwrapInboundIn(data), context: context)
    }

    private func receive(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch self.state {
        case .hummingbird:
            context.fireChannelRead(self.wrapInboundOut(part))
        case .answering:
            self.waiting.append(part)
        case .receiving(let head):
            // A stream request's body (a GET has none) is not read.
            if case .end = part { self.answer(head, context: context) }
        case .idle:
            // The decoder begins every request with its head.
            guard case .head(let head) = part else { return }
            if self.answerers.streams.matches(head) {
                self.state = .receiving(head)
                self.releaseConnectionTask(with: nil)
            } else {
                self.handToHummingbird(context: context)
                context.fireChannelRead(self.wrapInboundOut(part))
            }
        }
    }

    private func handToHummingbird(context: ChannelHandlerContext) {
        let asyncConnection: AsyncConnection
        do {
            asyncConnection = try AsyncConnection(
                wrappingChannelSynchronously: context.channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
        } catch {
            context.close(promise: nil)
            return
        }
        self.state = .hummingbird
        if self.handOver != nil {
            self.releaseConnectionTask(with: asyncConnection)
        } else {
            let (http1, logger) = (self.answerers.http1, self.logger)
            Task { await http1.handleHTTP(asyncChannel: asyncConnection, logger: logger) }
        }
    }

    private func releaseConnectionTask(with asyncConnection: AsyncConnection?) {
        self.handOver?.succeed(asyncConnection)
        self.handOver = nil
    }

    private func answer(_ head: HTTPRequest, context: ChannelHandlerContext) {
        // Hummingbird's own test for closing the connection after a response.
        self.state = .answering(closeAfter: head.headerFields[.connection] == "close")
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        let channel = context.channel
        let streams = self.answerers.streams
        let dispatcher = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        Task {
            let response = await streams.respond(to: request, on: channel)
            do {
                channel.write(HTTPResponsePart.head(response.head), promise: nil)
                try await response.body.write(ChannelBodyWriter(channel: channel))
            } catch {
                channel.close(promise: nil)
            }
            channel.eventLoop.execute {
                let (dispatcher, context) = dispatcher.value
                dispatcher.answered(context: context)
            }
        }
    }

    /// The answer is written (for a live stream: up to its snapshot and replay; ``StreamsController``
    /// ends its response when the stream ends). Requests that waited are taken in order.
    private func answered(context: ChannelHandlerContext) {
        guard case .answering(let closeAfter) = self.state else { return }
        self.state = .idle
        if closeAfter {
            context.close(promise: nil)
            return
        }
        while !self.waiting.isEmpty, !self.isAnswering {
            self.receive(self.waiting.removeFirst(), context: context)
        }
        // What went on to Hummingbird reaches its request loop at the end of a read.
        if case .hummingbird = self.state { context.fireChannelReadComplete() }
        if !self.isAnswering, self.readHeld {
            self.readHeld = false
            context.read()
        }
    }

    private var isAnswering: Bool {
        if case .answering = self.state { true } else { false }
    }

    func read(context: ChannelHandlerContext) {
        if self.isAnswering {
            self.readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            switch self.state {
            case .hummingbird:
                break
            case .answering:
                self.state = .answering(closeAfter: true)
            case .idle, .receiving:
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch self.state {
        case .hummingbird:
            context.fireErrorCaught(error)
        case .idle, .receiving:
            guard error is HTTPParserError else {
                context.close(promise: nil)
                return
            }
            // As Hummingbird answers a malformed request.
            self.state = .answering(closeAfter: true)
            context.write(
                self.wrapOutboundOut(
                    .head(.init(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"]))
                ),
                promise: nil
            )
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .answering:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.releaseConnectionTask(with: nil)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.releaseConnectionTask(with: nil)
    }
}

/// A response's body, written to its connection from the task that answers a stream request:
/// each write waits until the connection has taken it.
private struct ChannelBodyWriter: ResponseBodyWriter {
    let channel: any Channel

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(HTTPResponsePart.body(buffer)).get()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await self.channel.writeAndFlush(HTTPResponsePart.end(trailingHeaders)).get()
    }
}

/// The `Date` header's value (RFC 9110's IMF-fixdate), formatted at most once a second.
final class HTTPDate: Sendable {
    private let cached = Mutex<(second: Int, text: String)>((-1, ""))

    func now() -> String {
        let second = Int(Date().timeIntervalSince1970)
        if let text = self.cached.withLock({ $0.second == second ? $0.text : nil }) { return text }
        let text = Self.format(second)
        self.cached.withLock { $0 = (second, text) }
        return text
    }

    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// Moves a request's response writer (noncopyable, not `Sendable`) into the child task that answers
/// the request. `@unchecked Sendable`: it is taken exactly once, by that child, while the
/// connection's task only awaits it.
private final class WriterHandOver: @unchecked Sendable {
    private var writer: ResponseWriter?

    init(_ writer: consuming ResponseWriter) {
        self.writer = consume writer
    }

    func take() -> ResponseWriter {
        guard let writer = self.writer.take() else { preconditionFailure("the response writer is taken once") }
        return writer
    }
}
