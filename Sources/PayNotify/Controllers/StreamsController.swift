import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import PaymentProviders
import SSEGateway
import Synchronization

/// The Server-Sent Events routes: an order's stream for its checkout page
/// (`GET /v1/orders/{id}/events`, and the seeds' `GET /orderpay?payid={id}`) and the ops stream
/// (`GET /v1/ops/events`).
///
/// Every refusal is answered before the stream starts, with a status and a JSON body: `401` for a
/// missing, expired or wrong token (the same answer whether or not the order exists), `400` for a
/// malformed Last-Event-ID, `204` when the client already has the order's `finish` (EventSource then
/// stops for good), `429` or `503` with `Retry-After` when a limit is reached.
struct StreamsController {
    let streams: OrderStreams
    let ops: OpsFeed
    let tokens: StreamTokenSigner
    /// SHA-256 of the admin token; `nil` when the ops stream is disabled.
    let adminTokenDigest: [UInt8]?
    let settings: StreamSettings
    let origins: AllowedOrigins
    let addresses: ClientAddressResolver
    /// How long a stream's client has to take its snapshot and replay (the server's idle timeout).
    let replayDeadline: Duration
    let metrics: ServiceMetrics
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/v1/orders/{id}/events") { request, context in
            try await self.countingRefusals {
                try await self.orderStream(request, orderID: try context.parameters.require("id"), context: context)
            }
        }
        router.get("/orderpay") { request, context in
            try await self.countingRefusals {
                guard let orderID = request.uri.queryParameters["payid"].map(String.init), !orderID.isEmpty else {
                    throw APIError(
                        .badRequest,
                        code: "missing_payid",
                        message: "Name the order as ?payid=<order id>.",
                        headers: self.corsHeaders(request)
                    )
                }
                return try await self.orderStream(request, orderID: orderID, context: context)
            }
        }
        router.get("/v1/ops/events") { request, context in
            try await self.countingRefusals { try await self.opsStream(request, context: context) }
        }
        for path in ["/v1/orders/{id}/events", "/orderpay"] {
            router.on(RouterPath(path), method: .options) { request, _ in self.preflight(request) }
        }
    }

    /// Whether a request is for one of the stream routes (the server answers those apart, so that a
    /// live stream holds no task: ``StreamingHTTP1Channel``). Asked of every request the server
    /// reads, webhooks included, so it cuts the query off the target instead of parsing a `URI`.
    /// Empty segments are skipped, as the router skips them.
    static func isStreamRequest(_ head: HTTPRequest) -> Bool {
        guard head.method == .get, let target = head.path else { return false }
        let parts = target.prefix { $0 != "?" }.split(separator: "/")
        switch parts.count {
        case 1: return parts[0] == "orderpay"
        case 3: return parts[0] == "v1" && parts[1] == "ops" && parts[2] == "events"
        case 4: return parts[0] == "v1" && parts[1] == "orders" && parts[3] == "events"
        default: return false
        }
    }

    // MARK: Order streams

    private func orderStream(_ request: Request, orderID: String, context: AppRequestContext) async throws -> Response {
        let cors = self.corsHeaders(request)
        let token = bearerToken(request) ?? request.uri.queryParameters["token"].map(String.init)
        guard let token, self.tokens.isValid(token, orderID: orderID, now: self.now()) else {
            throw APIError(
                .unauthorized,
                code: "invalid_token",
                message: "Send the order's stream token as ?token= or Authorization: Bearer; it may have expired.",
                headers: cors.merging([.wwwAuthenticate: #"Bearer realm="paynotify""#])
            )
        }
        let lastEventID: Int64?
        do {
            lastEventID = try LastEventID.parse(
                request.headers[.lastEventID] ?? request.uri.queryParameters["lastEventId"].map(String.init)
            )
        } catch {
            throw APIError(
                .badRequest,
                code: "invalid_last_event_id",
                message: "Last-Event-ID must be an event id from this stream (digits); got \"\(error.text)\".",
                headers: cors
            )
        }
        let channel = context.channel
        let opening: OrderStreams.Opening
        do {
            opening = try await self.streams.open(
                orderID: orderID,
                lastEventID: lastEventID,
                clientAddress: ClientAddressResolver.limitKey(
                    for: self.addresses.address(
                        peer: context.remoteAddress,
                        forwardedFor: request.headers[.xForwardedFor]
                    )
                ),
                // The handler may be blocked in a write to this client: closing the connection
                // fails that write and ends the stream.
                onOverflow: { channel.close(promise: nil) }
            )
        } catch StreamOpeningError.orderNotFound {
            throw APIError(.notFound, code: "order_not_found", message: "No order has this id.", headers: cors)
        } catch StreamOpeningError.refused(let refusal) {
            throw Self.apiError(for: refusal, headers: cors)
        }
        switch opening {
        case .finished:
            return Response(status: .noContent, headers: cors)
        case .stream(let session):
            self.metrics.streamOpened(kind: "order")
            return self.eventStream(
                context.channel,
                request: request,
                headers: cors,
                onShutdown: session.end,
                onClientGone: session.cancel,
                start: { write, sink, onEnd in try await session.start(write: write, sink: sink, onEnd: onEnd) == nil }
            )
        }
    }

    private static func apiError(for refusal: StreamRefusal, headers: HTTPFields) -> APIError {
        switch refusal {
        case .tooManyFromAddress:
            APIError(
                .tooManyRequests,
                code: "too_many_streams_from_address",
                message: "This address has as many streams open as it may; close one or retry later.",
                headers: headers.merging([.retryAfter: "5"])
            )
        case .tooManyForOrder:
            APIError(
                .tooManyRequests,
                code: "too_many_streams_for_order",
                message: "This order has as many streams open as it may; close one or retry later.",
                headers: headers.merging([.retryAfter: "5"])
            )
        case .instanceFull:
            APIError(
                .serviceUnavailable,
                code: "streams_full",
                message: "This instance holds as many streams as it may; retry (another instance may have room).",
                headers: headers.merging([.retryAfter: "2"])
            )
        case .closed:
            APIError(
                .serviceUnavailable,
                code: "shutting_down",
                message: "This instance is stopping; retry to reach another.",
                headers: headers.merging([.retryAfter: "1"])
            )
        }
    }

    // MARK: Ops stream

    private func opsStream(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let adminTokenDigest else {
            throw APIError(
                .notFound,
                code: "ops_disabled",
                message: "The ops stream is disabled on this server: set PAYNOTIFY_ADMIN_TOKEN."
            )
        }
        let presented = bearerToken(request) ?? request.uri.queryParameters["token"].map(String.init)
        guard let presented, constantTimeEquals(Array(SHA256.hash(data: Array(presented.utf8))), adminTokenDigest)
        else {
            throw APIError(
                .unauthorized,
                code: "invalid_token",
                message: "Send the admin token as ?token= or Authorization: Bearer.",
                headers: [.wwwAuthenticate: #"Bearer realm="paynotify-ops""#]
            )
        }
        let channel = context.channel
        let subscription: OpsFeed.Subscription
        do {
            subscription = try self.ops.subscribe(onOverflow: { channel.close(promise: nil) })
        } catch {
            throw Self.apiError(for: error, headers: [:])
        }
        self.metrics.streamOpened(kind: "ops")
        let ops = self.ops
        return self.eventStream(
            context.channel,
            request: request,
            headers: [:],
            onShutdown: { ops.end(subscription) },
            onClientGone: { ops.unsubscribe(subscription) },
            start: { write, sink, onEnd in
                try await subscription.start(feed: ops, settings: self.settings, write: write, sink: sink, onEnd: onEnd)
            }
        )
    }

    /// Counts every refusal by its code for the metrics, then lets it answer.
    private func countingRefusals(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            self.metrics.streamRefused(reason: error.code)
            throw error
        }
    }

    // MARK: The response

    /// A `text/event-stream` response whose body `start` begins (the snapshot and any replay,
    /// through the server's writer), after which the hub writes to the connection directly. When
    /// the stream is live, `start` returns `true` and so does the response's body: the stream then
    /// holds no task, and what it costs is its connection's NIO handlers and its entry in the hub
    /// (``StreamingHTTP1Channel``; BENCHMARKS.md has the figures). `ResponseEnd` keeps the
    /// response open meanwhile and ends it when the stream ends.
    ///
    /// Hummingbird's `consumeWithCancellationOnInboundClose` notices a departed client by reading
    /// the request body in a task group; here ``LiveStreamConnection`` closes the connection when
    /// the client closes its side (the server allows half-closed connections, so NIO alone would
    /// keep it), and ends the stream when the connection closes (`onClientGone`). The same handler
    /// passes the server's graceful shutdown to the stream (`onShutdown`: a short `retry:`, then the end).
    ///
    /// A request that asks to close the connection after its response (`Connection: close`) keeps
    /// its task parked until the stream ends, as the server closes the connection as soon as the
    /// body has returned.
    private func eventStream(
        _ channel: any Channel,
        request: Request,
        headers: HTTPFields,
        onShutdown: @escaping @Sendable () -> Void,
        onClientGone: @escaping @Sendable () -> Void,
        start:
            @escaping @Sendable (
                _ write: (String) async throws -> Void,
                _ sink: any StreamSink,
                _ onEnd: @escaping @Sendable (StreamEnd) -> Void
            ) async throws -> Bool
    ) -> Response {
        var fields = headers
        fields[.contentType] = "text/event-stream; charset=utf-8"
        fields[.cacheControl] = "no-cache"
        fields[.xAccelBuffering] = "no"
        // Hummingbird's own test for closing the connection after this response.
        let closesAfter = request.headers[.connection] == "close"
        // A client that does not take its snapshot and replay would keep the stream, and its
        // place in the limits, as long as it kept the connection (the hub's age and keepalive
        // checks start when the stream is live): it has as long as an idle connection, then the
        // connection closes, which fails the write the replay waits in.
        let deadline = TimeAmount(self.replayDeadline)
        @Sendable func startWithinDeadline(
            _ write: (String) async throws -> Void,
            _ sink: any StreamSink,
            _ onEnd: @escaping @Sendable (StreamEnd) -> Void
        ) async throws -> Bool {
            let timer = channel.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
            defer { timer.cancel() }
            return try await start(write, sink, onEnd)
        }
        return Response(
            status: .ok,
            headers: fields,
            body: ResponseBody { writer in
                // Both handlers leave when the stream ends: a keep-alive connection (nginx's to an
                // upstream, say) may carry many streams one after another.
                let events = LiveStreamConnection(onShutdown: onShutdown, onClientGone: onClientGone)
                let end = ResponseEnd()
                try await channel.eventLoop.submit {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(events, position: .first)
                    if !closesAfter {
                        try pipeline.addHandler(
                            end,
                            position: .after(pipeline.handler(type: HTTPConnectionStateHandler.self))
                        )
                    }
                    // Gone before the handler was there to see it.
                    if !channel.isActive { onClientGone() }
                }.get()
                let removeEvents: @Sendable () -> Void = { channel.pipeline.removeHandler(events, promise: nil) }
                let write: (String) async throws -> Void = { text in try await writer.write(ByteBuffer(string: text)) }
                let sink = ChannelSink(channel: channel, connection: events)
                if closesAfter {
                    let ended = AsyncSignal()
                    defer { removeEvents() }
                    if try await startWithinDeadline(write, sink, { _ in ended.fire() }) { await ended.wait() }
                } else {
                    // Not live (it ended at once, or `start` threw): the server's end of the
                    // response must pass, and neither handler has anything left to do.
                    var live = false
                    defer {
                        if !live {
                            channel.pipeline.removeHandler(end, promise: nil)
                            removeEvents()
                        }
                    }
                    live = try await startWithinDeadline(
                        write,
                        sink,
                        { _ in
                            // Writing stops in the task that ends the response: a write queued
                            // meanwhile (a later part of a paced broadcast, say) would otherwise
                            // follow the body's last chunk on a connection that lives on.
                            channel.eventLoop.execute {
                                events.stopWriting()
                                end.streamEnded(on: channel)
                            }
                            removeEvents()
                        }
                    )
                }
                try await writer.finish(nil)
            }
        )
    }

    // MARK: CORS

    /// `Access-Control-Allow-Origin` for an allowed origin, so pages on other origins can read streams.
    private func corsHeaders(_ request: Request) -> HTTPFields {
        guard let allowed = self.origins.allowOrigin(for: request.headers[.origin]) else { return [:] }
        var fields: HTTPFields = [.accessControlAllowOrigin: allowed]
        if allowed != "*" { fields[.vary] = "Origin" }
        return fields
    }

    /// The answer to a preflight: needed only by clients that send `Authorization` or
    /// `Last-Event-ID` themselves (EventSource sends neither on its first request).
    private func preflight(_ request: Request) -> Response {
        var fields = self.corsHeaders(request)
        guard !fields.isEmpty else { return Response(status: .noContent) }
        fields[.accessControlAllowMethods] = "GET"
        fields[.accessControlAllowHeaders] = "Authorization, Last-Event-ID, Cache-Control"
        fields[.accessControlMaxAge] = "600"
        return Response(status: .noContent, headers: fields)
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xAccelBuffering = Self("X-Accel-Buffering")!
}

extension HTTPFields {
    fileprivate func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}

/// Writes a live stream's text straight to its connection, as more of the response's body: on the
/// connection's event loop, never waiting. The stream's task has written the head, the snapshot
/// and the replay through the server's writer before, and ends the body through it after, so the
/// order holds. A connection whose pending writes passed NIO's high watermark (64 KB beyond what
/// the kernel holds) refuses: that is the stream's bounded buffer.
struct ChannelSink: StreamSink {
    let channel: any Channel
    let connection: LiveStreamConnection

    func send(_ text: String) -> Bool {
        guard self.channel.isWritable else { return false }
        let chunk = LiveStreamConnection.chunk(text)
        let connection = self.connection
        if self.channel.eventLoop.inEventLoop {
            connection.write(chunk)
        } else {
            self.channel.eventLoop.execute { connection.write(chunk) }
        }
        return true
    }
}

/// Writes to many streams with one hop onto each event loop, instead of one per stream: a
/// broadcast to 10,000 streams is then two tasks on two loops (and two wake-ups), not 10,000, and
/// its text is framed once and shared by every connection's write (NIO writes a buffer without
/// copying it).
struct ChannelBatchWriter: StreamBatchWriter {
    func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int> {
        var refused: Set<Int> = []
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, writes: [(LiveStreamConnection, ByteBuffer)])] = [:]
        var framed: (text: String, chunk: ByteBuffer)?
        for (index, write) in writes.enumerated() {
            guard let sink = write.sink as? ChannelSink else {
                if !write.sink.send(write.text) { refused.insert(index) }
                continue
            }
            guard sink.channel.isWritable else {
                refused.insert(index)
                continue
            }
            // A broadcast is the same text throughout (the same storage: comparing is immediate).
            if framed?.text != write.text { framed = (write.text, LiveStreamConnection.chunk(write.text)) }
            let loop = sink.channel.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].writes.append((sink.connection, framed!.chunk))
        }
        for (loop, connectionWrites) in byLoop.values {
            loop.execute {
                for (connection, chunk) in connectionWrites { connection.write(chunk) }
            }
        }
        return refused
    }

    /// A stream's event loop.
    func group(of sink: any StreamSink) -> ObjectIdentifier? {
        (sink as? ChannelSink).map { ObjectIdentifier($0.channel.eventLoop) }
    }

    /// One task on the group's event loop writes every sink (their connections are all on it); a
    /// paced broadcast writes ``pacedPart`` sinks per task, ``pacedGap`` apart.
    func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    ) {
        guard let loop = (sinks.first as? ChannelSink)?.channel.eventLoop else {
            return OneSinkAtATime().broadcast(text, to: sinks, paced: paced, refused: refused)
        }
        let part = paced ? Self.pacedPart : sinks.count
        loop.execute {
            Self.write(
                LiveStreamConnection.chunk(text),
                to: sinks,
                from: 0,
                part: part,
                on: loop,
                refusals: [],
                refused
            )
        }
    }

    /// Sinks written per task by a paced broadcast, and the time between two tasks: 10,000 ops
    /// streams' `stats` (5,000 a loop) take 20 parts, about 70 ms, during which an alert waits
    /// for one part (2-3 ms) instead of the whole (BENCHMARKS.md, item 21).
    static let pacedPart = 256
    static let pacedGap = TimeAmount.milliseconds(1)

    private static func write(
        _ chunk: ByteBuffer,
        to sinks: [any StreamSink],
        from start: Int,
        part: Int,
        on loop: any EventLoop,
        refusals: [Int],
        _ refused: @escaping @Sendable ([Int]) -> Void
    ) {
        var refusals = refusals
        let end = min(start + part, sinks.count)
        for index in start..<end {
            // Every sink of a loop's group is a `ChannelSink` (`group(of:)`).
            guard let sink = sinks[index] as? ChannelSink, sink.channel.isWritable else {
                refusals.append(index)
                continue
            }
            sink.connection.write(chunk)
        }
        if end < sinks.count {
            let refusalsSoFar = refusals
            loop.scheduleTask(in: Self.pacedGap) {
                Self.write(chunk, to: sinks, from: end, part: part, on: loop, refusals: refusalsSoFar, refused)
            }
        } else if !refusals.isEmpty {
            refused(refusals)
        }
    }
}

/// Added to a stream's connection ahead of everything (it sees the socket's events first) while
/// the stream lives: closes the connection as soon as the client closes its side (a browser that
/// leaves sends its FIN and nothing else, and the server keeps half-closed connections open), ends
/// the stream when the connection closes (`onClientGone`), and passes the server's graceful
/// shutdown (NIO's quiesce event, sent to every connection) to the stream (`onShutdown`).
///
/// The live stream's text is written from here, past the HTTP/1.1 handlers, framed as a chunk of
/// the response's chunked body (``chunk(_:)``): a stream's response is always chunked (HTTP/1.1,
/// no length), its head and first chunks went through the HTTP handlers before, and its end
/// (`ResponseEnd`) goes through them after, all in order on the connection's event loop. Through
/// the handlers, each write cost a copy of the text, two boxed response parts, a chunk header of
/// its own and five handlers; one broadcast to 10,000 streams took 130–175 ms of each event loop
/// (BENCHMARKS.md, item 12).
final class LiveStreamConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    let onShutdown: @Sendable () -> Void
    let onClientGone: @Sendable () -> Void
    /// Set while the handler is in the pipeline; touched only on the connection's event loop
    /// (`@unchecked Sendable`).
    private var context: ChannelHandlerContext?
    private var stopped = false

    init(onShutdown: @escaping @Sendable () -> Void, onClientGone: @escaping @Sendable () -> Void) {
        self.onShutdown = onShutdown
        self.onClientGone = onClientGone
    }

    /// `text` as one chunk of a chunked body: its length in hex, CRLF, the text, CRLF.
    static func chunk(_ text: String) -> ByteBuffer {
        let length = text.utf8.count
        var buffer = ByteBuffer()
        buffer.reserveCapacity(length + 12)
        buffer.writeString(String(length, radix: 16))
        buffer.writeStaticString("\r\n")
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// Writes a chunk (``chunk(_:)``) to the connection; on its event loop. Nothing once the
    /// stream has ended (``stopWriting()``) or the handler left.
    func write(_ chunk: ByteBuffer) {
        guard !self.stopped else { return }
        self.context?.writeAndFlush(NIOAny(chunk), promise: nil)
    }

    /// No more writes: the stream's response is ending. On the connection's event loop.
    func stopWriting() {
        self.stopped = true
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.onClientGone()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            context.close(promise: nil)
        } else if event is ChannelShouldQuiesceEvent {
            self.onShutdown()
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Keeps a live stream's response open after its body returned to the server, and ends it when
/// the stream ends: it swallows the response's end that the server writes, and writes the end
/// itself on ``streamEnded(on:)``, whichever comes first; then it leaves the pipeline and the
/// connection serves a next request as usual. It sits after Hummingbird's connection state
/// handler, which so sees one response that ends when the stream does (no idle timeout meanwhile,
/// and a graceful shutdown closes the connection after it).
///
/// The server reads the connection again while the stream lives: a client that sent a second
/// request behind its stream (no browser or proxy does, as the response has not ended) would get
/// its answer inside the stream, on its own connection only.
private final class ResponseEnd: ChannelOutboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The outbound event ``streamEnded(on:)`` sends through the pipeline.
    private struct StreamEnded {}

    // Touched only on the connection's event loop (`@unchecked Sendable`).
    private var swallowedResponseEnd = false
    private var streamEnded = false

    func streamEnded(on channel: any Channel) {
        channel.triggerUserOutboundEvent(StreamEnded(), promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = self.unwrapOutboundIn(data), !self.swallowedResponseEnd else {
            context.write(data, promise: promise)
            return
        }
        self.swallowedResponseEnd = true
        promise?.succeed()
        self.leaveIfDone(context: context)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is StreamEnded else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if !self.streamEnded {
            self.streamEnded = true
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        promise?.succeed()
        self.leaveIfDone(context: context)
    }

    private func leaveIfDone(context: ChannelHandlerContext) {
        if self.swallowedResponseEnd && self.streamEnded {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// Fires once; `wait` returns at once if it fired already.
private final class AsyncSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func fire() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let fired = self.state.withLock { state in
                if !state.fired { state.waiter = continuation }
                return state.fired
            }
            if fired { continuation.resume() }
        }
    }
}
