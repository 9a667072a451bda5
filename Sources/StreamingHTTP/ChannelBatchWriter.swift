package import NIOCore
public import SSEGateway

/// Writes a live stream's text straight to its connection, as more of the response's body: on the
/// connection's event loop, never waiting. The stream's task has written the head, the snapshot
/// and the replay through the server's writer before, and ends the body through it after, so the
/// order holds. A connection whose pending writes passed NIO's high watermark (64 KB beyond what
/// the kernel holds) refuses: that is the stream's bounded buffer.
package struct ChannelSink: StreamSink {
    let channel: any Channel
    let connection: LiveStreamConnection

    package init(channel: any Channel, connection: LiveStreamConnection) {
        self.channel = channel
        self.connection = connection
    }

    package func send(_ text: String) -> Bool {
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
public struct ChannelBatchWriter: StreamBatchWriter {
    public init() {}

    public func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int> {
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
    public func group(of sink: any StreamSink) -> ObjectIdentifier? {
        (sink as? ChannelSink).map { ObjectIdentifier($0.channel.eventLoop) }
    }

    /// One task on the group's event loop writes every sink (their connections are all on it); a
    /// paced broadcast writes ``pacedPart`` sinks per task, ``pacedGap`` apart.
    public func broadcast(
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
    package static let pacedPart = 256
    package static let pacedGap = TimeAmount.milliseconds(1)

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
