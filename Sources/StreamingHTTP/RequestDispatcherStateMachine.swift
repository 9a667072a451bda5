package import HTTPTypes
package import NIOHTTPTypes

/// Who answers a connection's requests, as a value: the stream requests one at a time, until the
/// first request that is not a stream's, after which Hummingbird serves the connection for good.
///
/// ```
///            stream head                 end of request
///   idle ─────────────────► receiving ────────────────► answering
///    ▲  │ other head                                       │ answered
///    │  ▼                                                  │ (close, if asked to)
///    │ hummingbird (for good)                              │
///    └─────────────────────────────────────────────────────┘
/// ```
///
/// Parts that come while a request is being answered (pipelined) wait, and reads are held
/// meanwhile; when the answer is written they are received again, in order. ``RequestDispatcher``
/// feeds it what happened on the connection and performs the action it returns.
package struct RequestDispatcherStateMachine {
    package enum State: Hashable {
        /// Between requests.
        case idle
        /// A stream request's head came; its end has not. (Boxed: the dispatcher lives as long as
        /// its connection, and the state would otherwise keep a request head's room throughout.)
        indirect case receiving(HTTPRequest)
        /// A stream request is being answered; the connection closes afterwards if `closeAfter`.
        case answering(closeAfter: Bool)
        /// Hummingbird serves the connection from here on.
        case hummingbird
    }

    /// What to do with a part the connection read.
    package enum ReceiveAction: Equatable {
        /// Pass it on to Hummingbird.
        case forward
        /// Nothing (a stream request's body, or a part outside a request).
        case ignore
        /// Kept until the answer being written is done.
        case hold
        /// A stream request began: the connection's task, if it still waits, is not needed.
        case releaseConnectionTask
        /// Answer this stream request (its end came).
        case answer(HTTPRequest)
        /// Hand the connection to Hummingbird, then pass the part on.
        case handToHummingbirdAndForward
    }

    /// What to do once a stream request's answer is written.
    package enum AnsweredAction: Equatable {
        case close
        /// Receive these parts again, in order (they came while the answer was written), then
        /// ask ``readsResumed()``.
        case receive([HTTPRequestPart])
        /// Not answering: nothing to do.
        case nothing
    }

    /// What to do once the parts that waited were received again.
    package struct ResumeAction: Equatable {
        /// Hummingbird took the connection over: what went on to it reaches its loop at the end of a read.
        package var fireReadComplete: Bool
        /// A read asked for while answering was held: do it now.
        package var read: Bool

        package init(fireReadComplete: Bool, read: Bool) {
            self.fireReadComplete = fireReadComplete
            self.read = read
        }
    }

    /// What to do when the client closed its side.
    package enum InputClosedAction: Equatable {
        case close
        case nothing
    }

    /// What to do with an error the pipeline raised.
    package enum ErrorAction: Equatable {
        case forward
        case close
        /// Answer `400` with `Connection: close`, then close (as Hummingbird answers a malformed request).
        case answerBadRequestAndClose
    }

    package private(set) var state = State.idle
    /// Pipelined parts; an array, which allocates nothing while empty (NIO's `CircularBuffer`
    /// allocates room for 16 at once, on every connection).
    private var waiting: [HTTPRequestPart] = []
    private var readHeld = false
    private let isStreamRequest: @Sendable (HTTPRequest) -> Bool

    package init(isStreamRequest: @escaping @Sendable (HTTPRequest) -> Bool) {
        self.isStreamRequest = isStreamRequest
    }

    package mutating func partReceived(_ part: HTTPRequestPart) -> ReceiveAction {
        switch self.state {
        case .hummingbird:
            return .forward
        case .answering:
            self.waiting.append(part)
            return .hold
        case .receiving(let head):
            guard case .end = part else { return .ignore }  // a GET's body is not read
            // Hummingbird's own test for closing the connection after a response.
            self.state = .answering(closeAfter: head.headerFields[.connection] == "close")
            return .answer(head)
        case .idle:
            // The decoder begins every request with its head.
            guard case .head(let head) = part else { return .ignore }
            if self.isStreamRequest(head) {
                self.state = .receiving(head)
                return .releaseConnectionTask
            }
            self.state = .hummingbird
            return .handToHummingbirdAndForward
        }
    }

    package mutating func answered() -> AnsweredAction {
        guard case .answering(let closeAfter) = self.state else { return .nothing }
        self.state = .idle
        if closeAfter { return .close }
        defer { self.waiting = [] }
        return .receive(self.waiting)
    }

    package mutating func readsResumed() -> ResumeAction {
        let read = self.readHeld && !self.isAnswering
        if read { self.readHeld = false }
        return ResumeAction(fireReadComplete: self.state == .hummingbird, read: read)
    }

    /// Whether to read now; `false` holds the read until the answer is written.
    package mutating func readRequested() -> Bool {
        guard self.isAnswering else { return true }
        self.readHeld = true
        return false
    }

    package mutating func inputClosed() -> InputClosedAction {
        switch self.state {
        case .hummingbird:
            return .nothing
        case .answering:
            self.state = .answering(closeAfter: true)
            return .nothing
        case .idle, .receiving:
            return .close
        }
    }

    package mutating func errorCaught(isMalformedRequest: Bool) -> ErrorAction {
        switch self.state {
        case .hummingbird:
            return .forward
        case .idle, .receiving:
            guard isMalformedRequest else { return .close }
            self.state = .answering(closeAfter: true)
            return .answerBadRequestAndClose
        case .answering:
            return .close
        }
    }

    private var isAnswering: Bool {
        if case .answering = self.state { true } else { false }
    }
}
