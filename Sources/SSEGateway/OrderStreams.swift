public import OrderStore

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
    let store: OrderStore
    let settings: StreamSettings

    public init(hub: StreamHub, store: OrderStore, settings: StreamSettings) {
        self.hub = hub
        self.store = store
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
            guard let start = try await self.store.streamStart(orderID: orderID) else {
                throw StreamOpeningError.orderNotFound
            }
            let letGo = self.hub.replayCovers(subscription, through: start.latestEventID)
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
            return .stream(
                OrderStreamSession(
                    subscription: subscription,
                    cursor: cursor,
                    logHoldsMore: cursor < start.latestEventID || letGo,
                    finishEventID: start.finishEventID,
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
/// `finish`, the stream's maximum age, the server's shutdown or the client's departure.
///
/// The session holds the stream's registration: keep it until the stream ends (dropping it
/// unsubscribes).
public struct OrderStreamSession: Sendable {
    let subscription: StreamHub.Subscription
    let cursor: Int64
    /// Whether the replay reads the log: it held events above the cursor when the stream started,
    /// or the hub let events go before then (``StreamHub/replayCovers(_:through:)``). When neither
    /// (a fresh stream's snapshot is the log's newest id), the replay has nothing to read: anything
    /// committed since was published to the hub, which holds it for the stream.
    let logHoldsMore: Bool
    /// The order's last `finish` when the stream started (``StreamStart/finishEventID``).
    let finishEventID: Int64?
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
        var machine = OrderStreamStateMachine(cursor: self.cursor)
        do {
            try await write(
                ServerSentEventEncoder.retry(settings.retry) + (self.snapshot.map(ServerSentEventEncoder.encode) ?? "")
            )
            var after = self.cursor
            while self.logHoldsMore {
                let page = try await self.streams.store.events(
                    orderID: self.subscription.orderID,
                    after: after,
                    limit: settings.replayBatchSize
                )
                var text = ""
                // A `finish` below the order's last is superseded (a payment after the order had
                // ended) and not sent: the last is the start's, or a later one in this page,
                // committed since the start was read.
                let lastFinish = max(self.finishEventID ?? 0, page.last(where: \.isFinish)?.id ?? 0)
                for event in page
                where !(event.isFinish && event.id < lastFinish)
                    && machine.eventArrived(id: event.id, isFinish: event.isFinish) != .drop
                {
                    text += ServerSentEventEncoder.encode(
                        ServerSentEvent(id: String(event.id), event: event.name, data: event.data)
                    )
                    if machine.isEnded { break }
                }
                if !text.isEmpty { try await write(text) }
                guard !machine.isEnded else {  // `finish` was in the replay
                    hub.unsubscribe(self.subscription)
                    return .finished
                }
                guard page.count == settings.replayBatchSize, let last = page.last else { break }
                after = last.id
            }
        } catch {
            hub.unsubscribe(self.subscription)
            throw error
        }
        switch hub.goLive(self.subscription, cursor: machine.lastSent!, sink: sink, onEnd: onEnd) {
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
