public import EventLog

/// What order and ops streams open with.
public struct StreamSettings: Sendable, Hashable {
    /// The `retry:` sent when a stream opens: how long a browser waits before reconnecting.
    public var retry: Duration
    /// Events read from the log per query while replaying.
    public var replayBatchSize: Int

    public init(retry: Duration = .seconds(3), replayBatchSize: Int = 500) {
        self.retry = retry
        self.replayBatchSize = replayBatchSize
    }
}

/// Why a stream cannot open.
public enum StreamOpeningError: Error, Sendable, Hashable {
    case orderNotFound
    case refused(StreamRefusal)
}

/// Opens order streams: admission, registration with the hub, the snapshot and the replay.
public struct OrderStreams: Sendable {
    /// What a request for a stream gets.
    public enum Opening: Sendable {
        case stream(OrderStreamSession)
        /// The order finished and the client already has its `finish`: HTTP 204 (EventSource stops).
        case finished
    }

    public let hub: StreamHub
    let log: any OrderLog
    let settings: StreamSettings

    public init(hub: StreamHub, log: any OrderLog, settings: StreamSettings) {
        self.hub = hub
        self.log = log
        self.settings = settings
    }

    /// Registers a stream, then reads where it starts. Registration comes first so that an event
    /// committed in between reaches the stream live if the replay misses it.
    ///
    /// - Parameters:
    ///   - lastEventID: the client's Last-Event-ID; `nil` starts from a snapshot of the order.
    ///   - onOverflow: closes the connection when the hub drops the stream for not reading.
    public func open(
        orderID: String,
        lastEventID: Int64?,
        clientAddress: String,
        onOverflow: @escaping @Sendable () -> Void
    ) async throws -> Opening {
        let subscription: StreamHub.Subscription
        do {
            subscription = try self.hub.subscribe(
                orderID: orderID,
                clientAddress: clientAddress,
                onOverflow: onOverflow
            )
        } catch {
            throw StreamOpeningError.refused(error)
        }
        do {
            guard let start = try await self.log.streamStart(orderID: orderID) else {
                throw StreamOpeningError.orderNotFound
            }
            let snapshot: ServerSentEvent?
            let cursor: Int64
            if let lastEventID, lastEventID <= start.latestEventID {
                if let finish = start.finishEventID, lastEventID >= finish {
                    self.hub.unsubscribe(subscription)
                    return .finished
                }
                (snapshot, cursor) = (nil, lastEventID)
            } else {
                // A Last-Event-ID beyond the order's newest event was not issued by this database
                // as it is now (a restore, or a failover that lost recent commits): resuming after it
                // would skip whatever the log holds, so the client gets the order as it is instead.
                //
                // The snapshot's id is the cursor the stream continues from. For a finished order it
                // sits just below `finish`, so the replay then sends `finish` and ends the stream, and a
                // client that reconnects with this id still gets `finish`. Replay reads
                // `id > cursor` within the order, so a cursor that is no id of this order is fine.
                cursor = start.finishEventID.map { $0 - 1 } ?? start.latestEventID
                snapshot = ServerSentEvent(id: String(cursor), event: "status", data: start.status)
            }
            let readsLog = self.hub.startRead(
                subscription,
                cursor: cursor,
                latestEventID: start.latestEventID,
                finishEventID: start.finishEventID
            )
            return .stream(
                OrderStreamSession(
                    subscription: subscription,
                    cursor: cursor,
                    readsLog: readsLog,
                    snapshot: snapshot,
                    streams: self
                )
            )
        } catch {
            self.hub.unsubscribe(subscription)
            throw error
        }
    }
}

/// One open order stream: writes the snapshot and replays the log itself, then hands the stream
/// to the hub, which writes its live events, keepalives and parting `retry:` directly, until
/// `finish`, the stream's maximum age, the server's shutdown or the client's departure. What the
/// replay writes, and when the stream ends, the hub's ``StreamStateMachine`` decides.
///
/// The session holds the stream's registration: keep it until the stream ends (dropping it
/// unsubscribes).
public struct OrderStreamSession: Sendable {
    let subscription: StreamHub.Subscription
    let cursor: Int64
    /// Whether the replay reads the log (``StreamStateMachine/StartAction``): when it does not (a
    /// fresh stream's snapshot is the log's newest id), anything committed since was published
    /// to the hub, which holds it for the stream.
    let readsLog: Bool
    let snapshot: ServerSentEvent?
    let streams: OrderStreams

    /// Starts the stream: the snapshot and the replay go to `write` (awaited, so a slow client
    /// slows only its own replay), then the hub writes to `sink` and calls `onEnd` once when the
    /// stream ends. Returns as soon as the stream is live: `nil` then, or why it ended already
    /// (`finish` was in the replay, the server is stopping, …; `onEnd` is not called). Throws
    /// what `write` or the log read throws, after unsubscribing (the connection then closes and
    /// the client resumes with Last-Event-ID).
    public func start(
        write: (String) async throws -> Void,
        sink: any StreamSink,
        onEnd: @escaping @Sendable (StreamEnd) -> Void
    ) async throws -> StreamEnd? {
        let settings = self.streams.settings
        let hub = self.streams.hub
        do {
            try await write(
                ServerSentEventEncoder.retry(settings.retry) + (self.snapshot.map(ServerSentEventEncoder.encode) ?? "")
            )
            var after = self.cursor
            while self.readsLog {
                let page = try await self.streams.log.events(
                    orderID: self.subscription.orderID,
                    after: after,
                    limit: settings.replayBatchSize
                )
                switch hub.replayRead(self.subscription, page) {
                case .write(let events):
                    if !events.isEmpty { try await write(ServerSentEventEncoder.encode(events)) }
                case .writeAndFinish(let events):
                    try await write(ServerSentEventEncoder.encode(events))
                    return .finished
                case .stop(let end):
                    return end
                }
                guard page.count == settings.replayBatchSize, let last = page.last else { break }
                after = last.id
            }
        } catch {
            hub.unsubscribe(self.subscription)
            throw error
        }
        switch hub.replayFinished(self.subscription, sink: sink, onEnd: onEnd) {
        case .live: return nil
        case .ended(let end): return end
        }
    }

    /// Ends the stream with a short `retry:` (graceful shutdown). Holds the registration, not the
    /// session (kept for the stream's life, it should not keep the snapshot).
    public var end: @Sendable () -> Void {
        let (hub, subscription) = (self.streams.hub, self.subscription)
        return { hub.end(subscription) }
    }

    /// Ends the stream at once (the client went away). Holds the registration, as ``end`` does.
    public var cancel: @Sendable () -> Void {
        let (hub, subscription) = (self.streams.hub, self.subscription)
        return { hub.unsubscribe(subscription) }
    }
}
