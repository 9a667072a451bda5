// The life of a stream request, through this module:
//
//  1. The connection's pipeline is NIO's HTTP/1.1 codec, Hummingbird's connection state handler
//     and a ``RequestDispatcher`` (``StreamingHTTP1Channel/setup(channel:logger:)``).
//  2. The dispatcher reads the first request head. Not a stream's (``StreamRequests``'s matcher
//     says)? Hummingbird takes the connection over for good. A stream's? The dispatcher's state
//     machine (``RequestDispatcherStateMachine``) waits for its end and answers it itself.
//  3. The application's router answers it, in a short task (``StreamRequests/respond(to:on:)``):
//     its stream route checks the token and the limits and returns ``Response/eventStream(on:request:headers:startDeadline:onShutdown:onClientGone:start:)``.
//  4. That response's body writes the head, the snapshot and the replay through the server's
//     writer, awaited, then hands the connection to the gateway: ``LiveStreamConnection`` joins
//     the pipeline, and the gateway writes each live event straight to it (``ChannelSink``,
//     ``ChannelBatchWriter``), never waiting. The task ends; the stream now holds no task.
//  5. The stream ends (`finish`, its age, the server's shutdown, a slow or departed client):
//     ``LiveStreamConnection`` stops writing and the response's end goes out (`ResponseEnd`); the
//     connection then serves its next request as before.

import Hummingbird
public import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server, made lighter for connections that carry a stream
    /// (``StreamingHTTP1Channel``).
    public static func streamingHTTP1<Context>(
        configuration: HTTP1Channel.Configuration,
        streams: StreamRequests<Context>
    ) -> HTTPServerBuilder {
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
struct StreamingHTTP1Channel<Context: RequestContext>: ServerChildChannel
where Context.Source == ApplicationRequestContextSource {
    /// Who answers a connection's requests: Hummingbird, or the application for stream requests.
    /// One for the server, which every connection's dispatcher refers to.
    final class Answerers: Sendable {
        let http1: HTTP1Channel
        let streams: StreamRequests<Context>

        init(http1: HTTP1Channel, streams: StreamRequests<Context>) {
            self.http1 = http1
            self.streams = streams
        }
    }

    let answerers: Answerers

    init(http1: HTTP1Channel, streams: StreamRequests<Context>) {
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
