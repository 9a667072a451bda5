import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server, made lighter for connections that carry a stream
    /// (``StreamingHTTP1Channel``).
    static func http1(
        configuration: HTTP1Channel.Configuration,
        answeringInAChildTask isStreamRequest: @escaping @Sendable (Request) -> Bool
    ) -> HTTPServerBuilder {
        .init { responder in
            StreamingHTTP1Channel(
                http1: HTTP1Channel(
                    responder: { request, writer, channel in
                        guard isStreamRequest(request) else {
                            try await responder(request, writer, channel)
                            return
                        }
                        let handOver = WriterHandOver(writer)
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { try await responder(request, handOver.take(), channel) }
                            try await group.waitForAll()
                        }
                    },
                    configuration: configuration
                )
            )
        }
    }
}

/// Hummingbird's `HTTP1Channel`, with two changes for connections that hold a stream for a long
/// time, each measured with heaptrack at 5,000 open streams (BENCHMARKS.md):
///
/// - Requests to a stream route are answered in a child task of the connection's task. A Swift
///   task keeps the memory its deepest call chain needed (its allocator's slabs) until it ends; a
///   live stream's response body returns to Hummingbird (``StreamsController``) and the connection's
///   task then waits for a next request for as long as the stream lives. Answered in that task, the
///   stream kept the slabs of the whole router, middleware and handler chain; answered in a child,
///   they go when the child ends.
/// - Reads start with a 512-byte buffer instead of NIO's 2,048: each connection keeps its last
///   receive buffer for reuse, and a stream's connection reads one request head and then nothing.
///   The buffer grows for larger requests (a webhook's body) as NIO's adaptive allocator does.
struct StreamingHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.syncOptions?.setOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)
            )
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return self.http1.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await self.http1.handle(value: value, logger: logger)
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
