/// The life of the listening connection as a value: connecting, listening, backing off, stopped.
///
/// ```
///          start            connectSucceeded
///   idle ─────────► connecting ─────────────► listening
///                    ▲     │ connectFailed        │ connectionLost
///    backoffElapsed  │     ▼                      │ (reconnect at once)
///                   backingOff ◄──────────────────┘ (via connecting, if that fails)
///   any state ── shutdownRequested ──► stopped
/// ```
///
/// The ``NotificationListener`` feeds it what happened and performs the action it returns.
package struct ListenerStateMachine: Sendable {
    /// Where the listener is.
    package enum State: Sendable, Hashable {
        /// Not started.
        case idle
        /// Opening the connection and issuing `LISTEN`; `attempt` counts the failures since the last success.
        case connecting(attempt: Int)
        /// Receiving notifications.
        case listening
        /// Waiting before the next attempt.
        case backingOff(attempt: Int)
        /// Shut down for good.
        case stopped
    }

    /// What the listener must do next.
    package enum Action: Sendable, Hashable {
        /// Open a connection and `LISTEN` on every channel.
        case connect
        /// Tell the consumer that notifications may have been missed, then wait for new ones.
        case reportGapAndListen
        /// Wait this long (waking early for shutdown), then report ``ListenerStateMachine/backoffElapsed()``.
        case wait(Duration)
        /// Close the connection, if any, and end.
        case stop
    }

    package private(set) var state: State = .idle
    package let backoff: Backoff

    package init(backoff: Backoff) {
        self.backoff = backoff
    }

    package mutating func start() -> Action {
        guard case .idle = self.state else { preconditionFailure("Invalid state: \(self.state)") }
        self.state = .connecting(attempt: 0)
        return .connect
    }

    /// The connection is open and every channel is listened to.
    ///
    /// A gap is reported on the first start too: a consumer may have started tracking state before
    /// the `LISTEN` took effect, and what happened in between was never heard.
    package mutating func connectSucceeded() -> Action {
        switch self.state {
        case .connecting:
            self.state = .listening
            return .reportGapAndListen
        case .stopped:
            return .stop
        case .idle, .listening, .backingOff:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    package mutating func connectFailed() -> Action {
        switch self.state {
        case .connecting(let attempt):
            self.state = .backingOff(attempt: attempt + 1)
            return .wait(self.backoff.delay(afterFailures: attempt + 1))
        case .stopped:
            return .stop
        case .idle, .listening, .backingOff:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    /// The listening connection broke. The first reconnect is immediate: every moment without a
    /// listener widens the gap the consumer has to re-read.
    package mutating func connectionLost() -> Action {
        switch self.state {
        case .listening:
            self.state = .connecting(attempt: 0)
            return .connect
        case .stopped:
            return .stop
        case .idle, .connecting, .backingOff:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    package mutating func backoffElapsed() -> Action {
        switch self.state {
        case .backingOff(let attempt):
            self.state = .connecting(attempt: attempt)
            return .connect
        case .stopped:
            return .stop
        case .idle, .connecting, .listening:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    /// Valid in every state; stopping twice is harmless.
    package mutating func shutdownRequested() -> Action {
        self.state = .stopped
        return .stop
    }
}

/// Capped exponential backoff: `initial`, doubling after each further failure, never above `maximum`.
public struct Backoff: Sendable, Hashable {
    var initial: Duration
    var maximum: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait after `failures` consecutive failures (1 or more).
    package func delay(afterFailures failures: Int) -> Duration {
        var delay = self.initial
        for _ in 1..<max(failures, 1) {
            delay *= 2
            if delay >= self.maximum { return self.maximum }
        }
        return delay
    }
}
