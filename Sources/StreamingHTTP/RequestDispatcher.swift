import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The end of a connection's pipeline until Hummingbird takes the connection over. It answers
/// stream requests itself (the application's router answers, in a task that ends with the
/// answer or when the stream is live), one at a time and in order, and hands the connection to
/// Hummingbird at the first request that is not a stream's: through the connection's task if it
/// still waits (the first request), else in a new task. It does the connection-level work
/// Hummingbird's read loop would: `400` and close on a malformed request, close when the client
/// closes its side between requests or after a request that said `Connection: close`.
///
/// What to do is decided by ``RequestDispatcherStateMachine``; this handler does the IO. A request
/// that comes while a stream is live is answered at once, inside the stream's response, as
/// Hummingbird does on the connections it serves: no browser or proxy sends a request behind a
/// response that has not ended, and it garbles that connection only.
final class RequestDispatcher<Context: RequestContext>: ChannelDuplexHandler, RemovableChannelHandler
where Context.Source == ApplicationRequestContextSource {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    typealias AsyncConnection = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    private let answerers: StreamingHTTP1Channel<Context>.Answerers
    private let logger: Logger
    /// The connection's task waits on this until the first request: Hummingbird's side, or `nil`.
    private var handOver: EventLoopPromise<AsyncConnection?>?
    private var machine: RequestDispatcherStateMachine

    init(
        answerers: StreamingHTTP1Channel<Context>.Answerers,
        logger: Logger,
        handOver: EventLoopPromise<AsyncConnection?>
    ) {
        self.answerers = answerers
        self.logger = logger
        self.handOver = handOver
        self.machine = RequestDispatcherStateMachine(isStreamRequest: answerers.streams.matches)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.receive(self.unwrapInboundIn(data), context: context)
    }

    private func receive(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch self.machine.partReceived(part) {
        case .forward:
            context.fireChannelRead(self.wrapInboundOut(part))
        case .ignore, .hold:
            break
        case .releaseConnectionTask:
            self.releaseConnectionTask(with: nil)
        case .answer(let head):
            self.answer(head, context: context)
        case .handToHummingbirdAndForward:
            self.handToHummingbird(context: context)
            context.fireChannelRead(self.wrapInboundOut(part))
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

    /// The answer is written (for a live stream: up to its snapshot and replay; its response ends
    /// when the stream does). Requests that waited are taken in order.
    private func answered(context: ChannelHandlerContext) {
        switch self.machine.answered() {
        case .nothing:
            return
        case .close:
            context.close(promise: nil)
            return
        case .receive(let parts):
            for part in parts { self.receive(part, context: context) }
        }
        let resume = self.machine.readsResumed()
        if resume.fireReadComplete { context.fireChannelReadComplete() }
        if resume.read { context.read() }
    }

    func read(context: ChannelHandlerContext) {
        if self.machine.readRequested() { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent, self.machine.inputClosed() == .close {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch self.machine.errorCaught(isMalformedRequest: error is HTTPParserError) {
        case .forward:
            context.fireErrorCaught(error)
        case .close:
            context.close(promise: nil)
        case .answerBadRequestAndClose:
            context.write(
                self.wrapOutboundOut(
                    .head(.init(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"]))
                ),
                promise: nil
            )
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
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
