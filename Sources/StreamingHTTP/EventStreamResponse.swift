public import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import NIOCore
import NIOHTTPTypes
public import SSEGateway
import Synchronization

extension Response {
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
    ///
    /// - Parameters:
    ///   - channel: the request's connection.
    ///   - startDeadline: how long the client has to take what `start` writes (the snapshot and
    ///     the replay): a client that does not read would otherwise keep the stream, and its place
    ///     in the limits, for as long as it kept the connection (the gateway's age and keepalive
    ///     checks begin when the stream is live). Then the connection closes, which fails the write
    ///     `start` waits in.
    ///   - onShutdown: the server is stopping (NIO's quiesce event reached the connection).
    ///   - onClientGone: the connection closed.
    ///   - start: writes the stream's beginning through `write`, then hands the stream to the
    ///     gateway, which writes to `sink` and calls `onEnd` once when the stream ends; returns
    ///     whether the stream is live (else it ended already, and `onEnd` is not called).
    public static func eventStream(
        on channel: any Channel,
        request: Request,
        headers: HTTPFields,
        startDeadline: Duration,
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
        let deadline = TimeAmount(startDeadline)
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
}

extension HTTPField.Name {
    package static let xAccelBuffering = Self("X-Accel-Buffering")!
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
