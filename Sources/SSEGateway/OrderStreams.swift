import Foundation
public import OrderStore

/// The timings every order stream follows.
public struct StreamSettings: Sendable, Hashable {
    /// The `retry:` sent when a stream opens: how long a browser waits before reconnecting.
    public var retry: Duration
    /// The `retry:` sent when the server is stopping: short, so browsers move to another instance.
    public var shutdownRetry: Duration
    /// A `: keepalive` comment goes out after this much silence.
    public var heartbeat: Duration
    /// A stream ends after this long; the client resumes with Last-Event-ID.
    public var maximumAge: Duration
    /// Events read from the log per query while replaying.
    public var replayBatchSize: Int

    public init(
        retry: Duration = .seconds(3),
        shutdownRetry: Duration = .milliseconds(250),
        heartbeat: Duration = .seconds(15),
        maximumAge: Duration = .seconds(3600),
        replayBatchSize: Int = 500
    ) {
        self.retry = retry
        self.shutdownRetry = shutdownRetry
        self.heartbeat = heartbeat
        self.maximumAge = maximumAge
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
    let latency: DeliveryLatency

    public init(hub: StreamHub, store: OrderStore, settings: StreamSettings, latency: DeliveryLatency) {
        self.hub = hub
        self.store = store
        self.settings = settings
        self.latency = latency
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

/// One open order stream: writes the snapshot, replays the log, then relays live events until
/// `finish`, the stream's maximum age, the server's shutdown or the client's departure.
public struct OrderStreamSession: Sendable {
    let subscription: StreamHub.Subscription
    let cursor: Int64
    let snapshot: ServerSentEvent?
    let streams: OrderStreams

    /// Runs the stream, handing its text to `write` (one call per burst of events). Returns when the
    /// stream ends; throws what `write` or the log read throws (the connection then closes and the
    /// client resumes with Last-Event-ID).
    public func run(write: (String) async throws -> Void) async throws {
        let settings = self.streams.settings
        let clock = ContinuousClock()
        defer { self.streams.hub.unsubscribe(self.subscription) }
        var machine = OrderStreamStateMachine(
            cursor: self.cursor,
            now: clock.now,
            heartbeat: settings.heartbeat,
            maximumAge: settings.maximumAge
        )
        try await write(
            ServerSentEventEncoder.retry(settings.retry) + (self.snapshot.map(ServerSentEventEncoder.encode) ?? "")
        )

        var after = self.cursor
        while true {
            let page = try await self.streams.store.events(
                orderID: self.subscription.orderID,
                after: after,
                limit: settings.replayBatchSize
            )
            var text = ""
            for event in page {
                if Self.append(event, to: &text, machine: &machine, now: clock.now) == .sendAndEnd { break }
            }
            if !text.isEmpty { try await write(text) }
            if machine.isEnded { return }
            guard page.count == settings.replayBatchSize, let last = page.last else { break }
            after = last.id
        }

        for await signal in self.subscription.signals {
            switch signal {
            case .event(let event):
                var text = ""
                let action = Self.append(event, to: &text, machine: &machine, now: clock.now)
                guard action != .drop else { continue }
                try await write(text)
                self.streams.latency.record(Date().timeIntervalSince(event.createdAt))
                if action == .sendAndEnd { return }
            case .tick:
                switch machine.tick(now: clock.now) {
                case .nothing: continue
                case .sendKeepalive: try await write(ServerSentEventEncoder.comment("keepalive"))
                case .end: return
                }
            case .end:
                if machine.endRequested() { try await write(ServerSentEventEncoder.retry(settings.shutdownRetry)) }
                return
            }
        }
    }

    /// Ends the stream with a short `retry:` (graceful shutdown).
    public func end() { self.streams.hub.end(self.subscription) }

    /// Ends the stream at once (the client went away).
    public func cancel() { self.streams.hub.unsubscribe(self.subscription) }

    private static func append(
        _ event: OrderEvent,
        to text: inout String,
        machine: inout OrderStreamStateMachine,
        now: ContinuousClock.Instant
    ) -> OrderStreamStateMachine.EventAction {
        let action = machine.eventArrived(id: event.id, isFinish: event.isFinish, now: now)
        if action != .drop {
            text += ServerSentEventEncoder.encode(
                ServerSentEvent(id: String(event.id), event: event.name, data: event.data)
            )
        }
        return action
    }
}
