/// Where a live stream's bytes go: the hub writes to it directly and never waits on it.
public protocol StreamSink: Sendable {
    /// Queues `text` for the client without waiting. Returns false when the client is too far
    /// behind (its connection's buffers are full): the hub then drops the stream.
    func send(_ text: String) -> Bool
}

/// Hands many writes to their sinks at once: an implementation can group them (one hop onto each
/// event loop instead of one per stream).
public protocol StreamBatchWriter: Sendable {
    /// Queues each text on its sink; returns the positions of the writes refused (known at once, as
    /// ``StreamSink/send(_:)``'s).
    func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int>

    /// The broadcast group `sink` belongs to for as long as it lives: a caller that keeps its sinks
    /// sorted by group hands each group to ``broadcast(_:to:paced:refused:)`` whole.
    func group(of sink: any StreamSink) -> ObjectIdentifier?

    /// Queues `text` on every sink of one group (sinks for which ``group(of:)`` is the same),
    /// possibly after returning; `refused` is then called once, from any thread, with the positions
    /// of the sinks that refused, if any did. A `paced` broadcast (an event without an id, whose
    /// order against later events does not matter) may be spread out, so that what is published
    /// after it need not wait for all of it.
    func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    )
}

extension StreamBatchWriter {
    /// One group for every sink.
    public func group(of sink: any StreamSink) -> ObjectIdentifier? { nil }

    /// Writes one sink at a time, before returning.
    public func broadcast(
        _ text: String,
        to sinks: [any StreamSink],
        paced: Bool,
        refused: @escaping @Sendable ([Int]) -> Void
    ) {
        let refusals = sinks.indices.filter { !sinks[$0].send(text) }
        if !refusals.isEmpty { refused(refusals) }
    }
}

/// Writes one sink at a time.
public struct OneSinkAtATime: StreamBatchWriter {
    public init() {}

    public func send(_ writes: [(sink: any StreamSink, text: String)]) -> Set<Int> {
        Set(writes.indices.filter { !writes[$0].sink.send(writes[$0].text) })
    }
}
