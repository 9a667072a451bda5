public import Logging
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// Holds one dedicated connection that `LISTEN`s on a fixed set of channels and hands what arrives
/// to one consumer as an `AsyncSequence` (``events``).
///
/// The connection lives on a thread of its own, blocked in `poll` on libpq's socket (and on a pipe
/// that wakes it for shutdown): no polling loop, no sleeps. When the connection dies the listener
/// reconnects, at once and then with capped exponential backoff, and after every successful
/// `LISTEN` it emits ``Event/gap``.
///
/// - Important: PostgreSQL does not keep notifications for a listener that is not connected. A
///   ``Event/gap`` means "anything before this may have been missed": the consumer must re-read the
///   state it tracks. The first start reports a gap too, for the same reason.
///
/// If the consumer falls behind by more than ``Configuration/bufferSize`` events, newer
/// notifications are dropped and a ``Event/gap`` follows as soon as there is room, so an overflow
/// is handled exactly like a lost connection.
public final class NotificationListener: Service, Sendable {
    /// A notification received on a `LISTEN`ed channel.
    public struct Notification: Sendable, Hashable {
        public let channel: String
        public let payload: String
        /// The server process that sent it.
        let backendPID: Int32

        init(channel: String, payload: String, backendPID: Int32) {
            self.channel = channel
            self.payload = payload
            self.backendPID = backendPID
        }
    }

    /// What the consumer receives.
    public enum Event: Sendable, Hashable {
        case notification(Notification)
        /// Listening (again) from now on; notifications before this may have been missed.
        case gap
    }

    public struct Configuration: Sendable {
        var connection: ConnectionConfiguration
        var channels: [String]
        var backoff: Backoff
        /// Events held for a slow consumer before notifications are dropped (and a gap reported). Defaults to 10,000.
        var bufferSize: Int

        public init(
            connection: ConnectionConfiguration,
            channels: [String],
            backoff: Backoff = Backoff(),
            bufferSize: Int = 10_000
        ) {
            precondition(!channels.isEmpty, "a listener needs at least one channel")
            self.connection = connection
            self.channels = channels
            self.backoff = backoff
            self.bufferSize = bufferSize
        }
    }

    let configuration: Configuration
    /// The notifications and gaps, in order; for one consumer. It ends when ``run()`` returns.
    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let logger: Logger
    private let listening = Atomic<Bool>(false)
    private let connections = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        (self.events, self.continuation) = AsyncStream.makeStream(
            of: Event.self,
            bufferingPolicy: .bufferingOldest(configuration.bufferSize)
        )
    }

    /// True while the connection is up and listening on every channel.
    public var isListening: Bool { self.listening.load(ordering: .relaxed) }

    /// How many times the listener has connected and listened; every one after the first is a reconnect.
    public var connectionsMade: Int { self.connections.load(ordering: .relaxed) }

    /// Listens until graceful shutdown or cancellation.
    public func run() async throws {
        precondition(
            !self.started.exchange(true, ordering: .relaxed),
            "NotificationListener.run() must be called only once"
        )
        let wake = try WakePipe()
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        defer { self.continuation.finish() }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                _ = try? await thread.runIfActive { self.listen(wake: wake) }
            } onCancel: {
                wake.signal()
            }
        } onGracefulShutdown: {
            wake.signal()
        }
        try await thread.shutdownGracefully()
        wake.close()
    }

    // MARK: The listening thread

    /// The whole life of the listener, on its own thread: performs the state machine's actions.
    private func listen(wake: WakePipe) {
        var machine = ListenerStateMachine(backoff: self.configuration.backoff)
        var connection: Connection?
        var action = machine.start()
        while true {
            switch action {
            case .connect:
                do {
                    connection = try self.connectAndListen()
                    action = machine.connectSucceeded()
                } catch {
                    self.logger.warning("listener could not connect", metadata: ["error": "\(error)"])
                    action = machine.connectFailed()
                }
            case .reportGapAndListen:
                self.listening.store(true, ordering: .relaxed)
                self.connections.add(1, ordering: .relaxed)
                self.logger.info("listening", metadata: ["channels": "\(self.configuration.channels)"])
                let lost = self.deliver(from: connection!, wake: wake, gapPending: true)
                self.listening.store(false, ordering: .relaxed)
                connection?.close()
                connection = nil
                action = lost ? machine.connectionLost() : machine.shutdownRequested()
            case .wait(let delay):
                let reason = wake.wait(alongside: nil, timeout: delay)
                action = reason == .signalled ? machine.shutdownRequested() : machine.backoffElapsed()
            case .stop:
                connection?.close()
                return
            }
        }
    }

    private func connectAndListen() throws(PostgresError) -> Connection {
        let connection = try Connection.connect(self.configuration.connection)
        do {
            // Through a pooler in transaction mode, LISTEN stays on a server session this
            // connection may never see again, and notifications silently stop. (Asked before
            // LISTEN, which then stays the session's last statement in pg_stat_activity.)
            if !(try connection.reachesTheServerItself()) {
                self.logger.warning(
                    "the listener's connection goes through a pooler; notifications will be missed: give the listener a direct or session-mode connection"
                )
            }
            for channel in self.configuration.channels {
                try connection.execute("LISTEN \(try connection.quoteIdentifier(channel))")
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Hands notifications to the consumer until the connection breaks (returns true) or shutdown is
    /// signalled (returns false).
    private func deliver(from connection: Connection, wake: WakePipe, gapPending: Bool) -> Bool {
        var gapPending = gapPending
        while true {
            if gapPending {
                gapPending = !self.emit(.gap)
            }
            // Notifications libpq already holds (read along with a statement's result, such as
            // LISTEN's own) do not make the socket readable again: hand them out before waiting.
            while let notification = connection.nextNotification() {
                // Once one is dropped, the rest are covered by the gap that follows.
                if !gapPending && !self.emit(.notification(notification)) {
                    gapPending = true
                    self.logger.warning("listener consumer fell behind; reporting a gap")
                }
            }
            // While a gap waits for room in the buffer, look again shortly; otherwise sleep until
            // the server or the shutdown pipe has something.
            switch wake.wait(alongside: connection.socket, timeout: gapPending ? .milliseconds(10) : nil) {
            case .signalled:
                return false
            case .timedOut:
                continue
            case .readable:
                guard connection.consumeInput() else {
                    self.logger.warning(
                        "listener connection lost",
                        metadata: ["error": "\(connection.connectionError(kind: .connectionBroken).message)"]
                    )
                    return true
                }
            }
        }
    }

    /// False when the buffer is full and the event was dropped.
    private func emit(_ event: Event) -> Bool {
        switch self.continuation.yield(event) {
        case .enqueued, .terminated: true
        case .dropped: false
        @unknown default: true
        }
    }
}
