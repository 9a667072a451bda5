import NIOCore
import NIOEmbedded
import SSEGateway
import StreamingHTTP
import Synchronization
import Testing

@Suite("Live stream connections")
struct LiveStreamConnectionTests {
    /// A live stream's text is written as one chunk of the response's chunked body: the length is
    /// the text's bytes (not its characters) in hex.
    @Test(arguments: [
        ("data: {}\n\n", "a\r\ndata: {}\n\n\r\n"),
        ("é", "2\r\né\r\n"),
        (String(repeating: "x", count: 300), "12c\r\n" + String(repeating: "x", count: 300) + "\r\n"),
    ])
    func liveTextIsFramedAsAChunk(text: String, framed: String) {
        #expect(String(buffer: LiveStreamConnection.chunk(text)) == framed)
    }
}

@Suite("Broadcast writes")
struct BroadcastWriteTests {
    /// Connections on one event loop, each live (its `LiveStreamConnection` in place).
    private func connections(_ count: Int, on loop: EmbeddedEventLoop) throws -> [EmbeddedChannel] {
        try (0..<count).map { _ in
            let channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandler(LiveStreamConnection(onShutdown: {}, onClientGone: {}))
            return channel
        }
    }

    private func sinks(_ channels: [EmbeddedChannel]) throws -> [any StreamSink] {
        try channels.map {
            ChannelSink(
                channel: $0,
                connection: try $0.pipeline.syncOperations.handler(type: LiveStreamConnection.self)
            )
        }
    }

    /// What each connection was sent, as text.
    private func written(_ channels: [EmbeddedChannel]) throws -> [String] {
        try channels.map { channel in
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    /// A paced broadcast writes its sinks a part at a time, a gap apart: a broadcast made meanwhile
    /// reaches the connections the paced one has not reached yet before it does. Every writable
    /// connection gets the text once, and the refusals are reported once, at the end.
    @Test func pacedBroadcastLetsLaterOnesThrough() throws {
        let loop = EmbeddedEventLoop()
        let count = ChannelBatchWriter.pacedPart * 2 + 10
        let channels = try self.connections(count, on: loop)
        let stalled: Set<Int> = [3, count - 1]
        for index in stalled { channels[index].isWritable = false }
        let refusals = Refusals()
        let writer = ChannelBatchWriter()
        writer.broadcast("stats", to: try self.sinks(channels), paced: true) { refusals.record($0) }
        loop.run()
        writer.broadcast("alert", to: try self.sinks(channels), paced: false) { _ in }
        loop.run()
        loop.advanceTime(by: ChannelBatchWriter.pacedGap)
        #expect(refusals.all.isEmpty)
        loop.advanceTime(by: ChannelBatchWriter.pacedGap)

        let texts = try self.written(channels)
        let stats = LiveStreamConnection.chunk("stats")
        let alert = LiveStreamConnection.chunk("alert")
        for (index, text) in texts.enumerated() {
            let expected =
                stalled.contains(index)
                ? ""
                : index < ChannelBatchWriter.pacedPart
                    ? String(buffer: stats) + String(buffer: alert)
                    : String(buffer: alert) + String(buffer: stats)
            #expect(text == expected, "connection \(index)")
        }
        #expect(refusals.all == [stalled.sorted()])
        for channel in channels { _ = try channel.finish() }
    }

    /// A stream that ends while a paced broadcast is under way gets none of its later parts: its
    /// response's last chunk is the last thing written.
    @Test func noPartAfterAStreamEnds() throws {
        let loop = EmbeddedEventLoop()
        let channels = try self.connections(ChannelBatchWriter.pacedPart + 1, on: loop)
        let writer = ChannelBatchWriter()
        writer.broadcast("stats", to: try self.sinks(channels), paced: true) { _ in }
        loop.run()
        try channels.last!.pipeline.syncOperations.handler(type: LiveStreamConnection.self).stopWriting()
        loop.advanceTime(by: ChannelBatchWriter.pacedGap)
        let texts = try self.written(channels)
        #expect(texts.first == String(buffer: LiveStreamConnection.chunk("stats")))
        #expect(texts.last == "")
        for channel in channels { _ = try channel.finish() }
    }
}

private final class Refusals: Sendable {
    private let calls = Mutex<[[Int]]>([])
    func record(_ positions: [Int]) { self.calls.withLock { $0.append(positions) } }
    var all: [[Int]] { self.calls.withLock { $0 } }
}
