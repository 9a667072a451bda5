package import NIOCore

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
package final class LiveStreamConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = NIOAny

    let onShutdown: @Sendable () -> Void
    let onClientGone: @Sendable () -> Void
    /// Set while the handler is in the pipeline; touched only on the connection's event loop
    /// (`@unchecked Sendable`).
    private var context: ChannelHandlerContext?
    private var stopped = false

    package init(onShutdown: @escaping @Sendable () -> Void, onClientGone: @escaping @Sendable () -> Void) {
        self.onShutdown = onShutdown
        self.onClientGone = onClientGone
    }

    /// `text` as one chunk of a chunked body: its length in hex, CRLF, the text, CRLF.
    package static func chunk(_ text: String) -> ByteBuffer {
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
    package func stopWriting() {
        self.stopped = true
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.onClientGone()
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            context.close(promise: nil)
        } else if event is ChannelShouldQuiesceEvent {
            self.onShutdown()
        }
        context.fireUserInboundEventTriggered(event)
    }
}
