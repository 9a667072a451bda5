import Synchronization

/// Broadcasts ops events (`alert`, `stats`) to every open ops stream on this instance.
///
/// Like ``StreamHub``: bounded buffers, and a stream that does not read is dropped (its
/// `onOverflow` closes the connection) instead of slowing the broadcast.
public final class OpsFeed: Sendable {
    public enum Signal: Sendable, Hashable {
        /// An event, already in its wire form: encoded once however many streams it goes to.
        case event(String)
        /// End the stream now, with a short `retry:` (the server is stopping).
        case end
    }

    public struct Subscription: Sendable {
        public let id: Int
        public let signals: AsyncStream<Signal>
    }

    private struct Stream {
        let continuation: AsyncStream<Signal>.Continuation
        let onOverflow: @Sendable () -> Void
    }

    private struct State {
        var streams: [Int: Stream] = [:]
        var nextID = 0
    }

    public let bufferSize: Int
    /// Ops streams this instance admits.
    public let limit: Int
    private let state = Mutex(State())

    public init(bufferSize: Int, limit: Int) {
        precondition(bufferSize > 0, "a stream needs room for at least one signal")
        self.bufferSize = bufferSize
        self.limit = limit
    }

    public func subscribe(onOverflow: @escaping @Sendable () -> Void) throws(StreamRefusal) -> Subscription {
        let (signals, continuation) = AsyncStream.makeStream(
            of: Signal.self,
            bufferingPolicy: .bufferingOldest(self.bufferSize)
        )
        let admitted = self.state.withLock { state -> Int? in
            guard state.streams.count < self.limit else { return nil }
            defer { state.nextID += 1 }
            state.streams[state.nextID] = Stream(continuation: continuation, onOverflow: onOverflow)
            return state.nextID
        }
        guard let id = admitted else { throw .instanceFull }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in state.streams[id] = nil }
        }
        return Subscription(id: id, signals: signals)
    }

    public func unsubscribe(_ subscription: Subscription) {
        self.state.withLock { $0.streams[subscription.id]?.continuation }?.finish()
    }

    /// Asks one stream to end with a short `retry:`.
    public func end(_ subscription: Subscription) {
        guard let stream = self.state.withLock({ $0.streams[subscription.id] }) else { return }
        Self.offer(.end, to: stream)
    }

    /// Sends an event to every ops stream. Never waits.
    public func publish(_ event: ServerSentEvent) {
        let streams = self.state.withLock { Array($0.streams.values) }
        guard !streams.isEmpty else { return }
        let signal = Signal.event(ServerSentEventEncoder.encode(event))
        for stream in streams { Self.offer(signal, to: stream) }
    }

    public var openStreams: Int { self.state.withLock { $0.streams.count } }

    private static func offer(_ signal: Signal, to stream: Stream) {
        guard case .dropped = stream.continuation.yield(signal) else { return }
        stream.continuation.finish()
        stream.onOverflow()
    }
}

extension OpsFeed.Subscription {
    /// Runs an ops stream: `retry:`, then every broadcast event until the stream ends.
    public func run(feed: OpsFeed, settings: StreamSettings, write: (String) async throws -> Void) async throws {
        defer { feed.unsubscribe(self) }
        try await write(ServerSentEventEncoder.retry(settings.retry))
        for await signal in self.signals {
            switch signal {
            case .event(let text):
                try await write(text)
            case .end:
                try await write(ServerSentEventEncoder.retry(settings.shutdownRetry))
                return
            }
        }
    }
}
