import Hummingbird
import HummingbirdCore
import NIOCore

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server, with each request to a stream route answered in a child task
    /// of the connection's task.
    ///
    /// Why: a Swift task keeps the memory its deepest call chain needed (its allocator's slabs)
    /// until it ends. A live stream's response body returns to Hummingbird once the hub writes to
    /// the connection (``StreamsController``), and the connection's task then waits for a next
    /// request for as long as the stream lives. Answered in the connection's own task, the stream
    /// kept the slabs of the whole router, middleware and handler chain for its lifetime; answered
    /// in a child task, they go when the child ends, and what waits is the connection's shallow
    /// loop. BENCHMARKS.md has the figures.
    static func http1(
        configuration: HTTP1Channel.Configuration,
        answeringInAChildTask isStreamRequest: @escaping @Sendable (Request) -> Bool
    ) -> HTTPServerBuilder {
        .init { responder in
            HTTP1Channel(
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
        }
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
