import HTTPTypes
import NIOCore
import NIOHTTPTypes
import StreamingHTTP
import Testing

private func get(_ path: String, _ fields: HTTPFields = [:]) -> HTTPRequest {
    HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path, headerFields: fields)
}

private let stream = get("/stream")
private let closingStream = get("/stream", [.connection: "close"])
private let page = get("/page")

private func newMachine() -> RequestDispatcherStateMachine {
    RequestDispatcherStateMachine(isStreamRequest: { $0.path == "/stream" })
}

@Suite("Request dispatcher state machine")
struct RequestDispatcherStateMachineTests {
    /// A stream request is answered once its end came, and the connection then takes the next
    /// request; the connection's task is released at the first stream head.
    @Test func answersStreamRequestsOneAtATime() {
        var machine = newMachine()
        #expect(machine.partReceived(.head(stream)) == .releaseConnectionTask)
        #expect(machine.state == .receiving(stream))
        #expect(machine.partReceived(.body(ByteBuffer(string: "x"))) == .ignore)
        #expect(machine.partReceived(.end(nil)) == .answer(stream))
        #expect(machine.state == .answering(closeAfter: false))
        #expect(machine.answered() == .receive([]))
        #expect(machine.readsResumed() == .init(fireReadComplete: false, read: false))
        #expect(machine.state == .idle)
        #expect(machine.partReceived(.head(stream)) == .releaseConnectionTask)
    }

    /// The first request that is not a stream's hands the connection to Hummingbird for good:
    /// everything after it, stream requests included, is passed on.
    @Test func handsOverForGood() {
        var machine = newMachine()
        #expect(machine.partReceived(.head(page)) == .handToHummingbirdAndForward)
        #expect(machine.partReceived(.end(nil)) == .forward)
        #expect(machine.partReceived(.head(stream)) == .forward)
        #expect(machine.readRequested() == true)
        #expect(machine.inputClosed() == .nothing)
        #expect(machine.errorCaught(isMalformedRequest: true) == .forward)
    }

    /// Requests pipelined behind a stream request wait, with reads held, and are received again
    /// in order once it is answered: a page request among them hands the connection over, and
    /// the held read and the read-complete go out then.
    @Test func pipelinedRequestsWaitThenGoInOrder() {
        var machine = newMachine()
        _ = machine.partReceived(.head(stream))
        _ = machine.partReceived(.end(nil))
        #expect(machine.partReceived(.head(page)) == .hold)
        #expect(machine.partReceived(.end(nil)) == .hold)
        #expect(machine.readRequested() == false)
        let answered = machine.answered()
        #expect(answered == .receive([.head(page), .end(nil)]))
        #expect(machine.partReceived(.head(page)) == .handToHummingbirdAndForward)
        #expect(machine.partReceived(.end(nil)) == .forward)
        #expect(machine.readsResumed() == .init(fireReadComplete: true, read: true))
    }

    /// A second stream request in the pipeline is answered in its turn; parts behind it wait
    /// again, and the held read waits for its answer too.
    @Test func aPipelinedStreamWaitsForItsTurn() {
        var machine = newMachine()
        _ = machine.partReceived(.head(stream))
        _ = machine.partReceived(.end(nil))
        _ = machine.partReceived(.head(stream))
        _ = machine.partReceived(.end(nil))
        _ = machine.partReceived(.head(page))
        #expect(machine.readRequested() == false)
        #expect(machine.answered() == .receive([.head(stream), .end(nil), .head(page)]))
        #expect(machine.partReceived(.head(stream)) == .releaseConnectionTask)
        #expect(machine.partReceived(.end(nil)) == .answer(stream))
        #expect(machine.partReceived(.head(page)) == .hold)
        #expect(machine.readsResumed() == .init(fireReadComplete: false, read: false))
        #expect(machine.answered() == .receive([.head(page)]))
        #expect(machine.partReceived(.head(page)) == .handToHummingbirdAndForward)
        #expect(machine.readsResumed() == .init(fireReadComplete: true, read: true))
    }

    /// `Connection: close`, or a client that closed its side while its stream was answered, closes
    /// the connection after the answer; between requests, a closed side closes it at once.
    @Test func closesWhenAsked() {
        var machine = newMachine()
        _ = machine.partReceived(.head(closingStream))
        #expect(machine.partReceived(.end(nil)) == .answer(closingStream))
        #expect(machine.answered() == .close)

        machine = newMachine()
        _ = machine.partReceived(.head(stream))
        _ = machine.partReceived(.end(nil))
        #expect(machine.inputClosed() == .nothing)
        #expect(machine.answered() == .close)

        machine = newMachine()
        #expect(machine.inputClosed() == .close)
        _ = machine.partReceived(.head(stream))
        #expect(machine.inputClosed() == .close)
    }

    /// A malformed request is answered `400` and the connection closed, as Hummingbird does;
    /// another error closes it; an answer that was not asked for does nothing.
    @Test func errors() {
        var machine = newMachine()
        #expect(machine.errorCaught(isMalformedRequest: false) == .close)
        #expect(machine.errorCaught(isMalformedRequest: true) == .answerBadRequestAndClose)
        #expect(machine.state == .answering(closeAfter: true))
        #expect(machine.errorCaught(isMalformedRequest: true) == .close)

        machine = newMachine()
        #expect(machine.answered() == .nothing)
        #expect(machine.partReceived(.end(nil)) == .ignore)  // no head yet
    }
}
