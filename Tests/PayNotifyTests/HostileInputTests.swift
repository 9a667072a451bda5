import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PayNotifyClient
import Postgres
import TestSupport
import Testing

/// A raw TCP connection to a test server, for requests no well-behaved client would send.
private struct RawConnection: ~Copyable {
    let socket: Int32

    /// How long ``receive()`` waits for the server.
    let receiveTimeout: Duration

    /// - Parameter receiveBuffer: a small one keeps the server's writes waiting for a client that
    ///   does not read (set before connecting, so the window the server is offered stays small).
    init(port: Int, receiveTimeout: Duration, receiveBuffer: Int32? = nil) throws {
        self.socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.receiveTimeout = receiveTimeout
        if var size = receiveBuffer {
            setsockopt(self.socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestSetupError("connect failed: errno \(errno)") }
    }

    deinit { close(self.socket) }

    func send(_ text: String) { self.send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(self.socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Closes the sending side (a FIN), as a client that leaves does.
    func finishSending() { shutdown(self.socket, Int32(SHUT_WR)) }

    /// What arrives until the server closes the connection or the timeout passes; `closed` tells which.
    /// It never blocks a thread: the server under test runs in this process, on the same
    /// cooperative threads (two on this machine), and parallel tests each waiting in a blocking
    /// `recv` would leave it none.
    func receive() async throws -> (text: String, closed: Bool) {
        let deadline = ContinuousClock.now + self.receiveTimeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let count = buffer.withUnsafeMutableBytes {
                recv(self.socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
            }
            if count > 0 {
                received += buffer[0..<count]
            } else if count == 0 {
                return (String(decoding: received, as: UTF8.self), true)
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

@Suite("Hostile and broken input")
struct HostileInputTests {
    /// Mutated, truncated and garbage webhook requests through the whole application: never a 5xx,
    /// always the JSON error shape.
    @Test func fuzzedWebhooksNeverGetA5xx() async throws {
        try await withApp { client, _ in
            var generator = SystemRandomNumberGenerator()
            let order = try await client.createOrder()
            let id = try #require(order["id"] as? String)
            let valid = #"{"id":"evt_1","type":"payment.succeeded","order_id":"\#(id)","amount":1999,"currency":"CNY"}"#
            let timestamp = Int(Date().timeIntervalSince1970)
            for iteration in 0..<300 {
                var body = Array(valid.utf8)
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let position = Int.random(in: 0..<max(body.count, 1), using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0 where !body.isEmpty: body[position] = UInt8.random(in: 0...255, using: &generator)
                    case 1: body.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                    default: body = Array(body.prefix(position))
                    }
                }
                let text = String(decoding: body, as: UTF8.self)
                var headers: HTTPFields = [.contentType: "application/json"]
                switch iteration % 4 {
                case 0:
                    headers[HTTPField.Name("Sandbox-Signature")!] = TestConfiguration.sandboxSignature(
                        text,
                        timestamp: timestamp
                    )
                case 1:
                    headers[HTTPField.Name("Sandbox-Signature")!] =
                        "t=\(timestamp),v1=\(String(repeating: "ab", count: 32))"
                case 2: headers[HTTPField.Name("Sandbox-Signature")!] = String(decoding: body.prefix(40), as: UTF8.self)
                default: break
                }
                let response = try await client.execute(
                    uri: "/v1/webhooks/sandbox",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(bytes: body)
                )
                #expect(response.status.code < 500, "iteration \(iteration): \(response.status) for \(text)")
                if response.status.code >= 400 { #expect(response.errorCode != nil, "iteration \(iteration)") }
            }
        }
    }

    /// A body announced larger than the limit is refused with 413 before it is read whole: the
    /// answer comes while most of it was never sent.
    @Test func oversizedBodyRefusedBeforeItIsRead() async throws {
        try await withLiveApp { client, _ in
            let connection = try RawConnection(port: client.port, receiveTimeout: .seconds(6))
            connection.send(
                "POST /v1/webhooks/sandbox HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 50000000\r\n\r\n"
            )
            connection.send([UInt8](repeating: UInt8(ascii: "x"), count: 100_000))
            let (answer, _) = try await connection.receive()
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
        }
    }

    /// Reproducer: a chunked body whose chunk size is not hex fails as the handler reads it, and
    /// that parser error was answered `500 internal_error` and logged as a bug. It is the client's
    /// mistake: `400`, in the API's JSON shape.
    @Test(arguments: ["/v1/orders", "/v1/webhooks/sandbox"])
    func malformedChunkedBodyIsABadRequest(path: String) async throws {
        try await withLiveApp { client, _ in
            let connection = try RawConnection(port: client.port, receiveTimeout: .seconds(6))
            connection.send(
                "POST \(path) HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(TestSecrets.apiKey)\r\n"
                    + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
            )
            let (answer, _) = try await connection.receive()
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(200))")
            #expect(answer.contains(#""code":"bad_request""#), "\(answer)")
        }
    }

    /// Reproducer: a client that did not read while its stream's replay was written held the
    /// stream, and its place in the limits, for as long as it kept the connection open: the
    /// hub's age and keepalive checks start when a stream is live. It now has as long as an idle
    /// connection to take its snapshot and replay.
    @Test func aClientThatDoesNotReadItsReplayIsCutOff() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_IDLE_TIMEOUT_SECONDS": "1"]) { client, database in
            let order = try await client.createOrder()
            // About 10 MB to replay: more than the connection's buffers hold (the kernel's may grow to 4 MB).
            try await database.withConnection { connection in
                try connection.execute(
                    """
                    INSERT INTO order_events (order_id, event, data)
                    SELECT $1, 'ticket.note', jsonb_build_object('text', repeat('x', 400)) FROM generate_series(1, 25000)
                    """,
                    [order.id]
                )
            }
            let connection = try RawConnection(port: client.port, receiveTimeout: .seconds(10), receiveBuffer: 4096)
            connection.send("GET \(order.streamPath) HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: 1\r\n\r\n")
            try await Task.sleep(for: .seconds(3))  // not reading
            let (answer, closed) = try await connection.receive()
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            #expect(closed)
        }
    }

    /// A client that never finishes its headers is cut off after the idle timeout.
    @Test func slowHeadersAreCutOff() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_IDLE_TIMEOUT_SECONDS": "1"]) { client, _ in
            let started = ContinuousClock.now
            let connection = try RawConnection(port: client.port, receiveTimeout: .seconds(10))
            connection.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            let (answer, closed) = try await connection.receive()
            #expect(closed && answer.isEmpty)
            #expect(ContinuousClock.now - started < .seconds(5))
            // A stream being answered is never idle, however long its silences. (The deadline only
            // bounds the test: 4 s was overrun on a loaded machine, the silence being 2 s.)
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath, deadline: .now() + .seconds(20)) { stream in
                _ = try await stream.nextEvent()
                try await Task.sleep(for: .seconds(2))
                try await client.sandbox("processing", order: order.id)
                #expect(try await stream.nextEvent()?.name == "status")
            }
        }
    }
}

/// The connection handling the server does itself before Hummingbird takes a connection over
/// (`StreamingHTTP1Channel`): what Hummingbird's own read loop would do, in the same cases.
@Suite("Connections answered before Hummingbird takes them")
struct ConnectionDispatchTests {
    /// Pipelined requests are answered in order, whoever answers each: a stream request's refusal
    /// (answered apart, with the `Date` and `Server` headers Hummingbird adds), a plain request
    /// (Hummingbird takes the connection over), a stream request on a connection Hummingbird holds,
    /// which asks to close the connection after it.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withLiveApp { client, _ in
            let connection = try RawConnection(port: client.port, receiveTimeout: .seconds(5))
            let stream = "GET /v1/orders/ord_a/events?token=garbage HTTP/1.1\r\nHost: localhost\r\n"
            connection.send(
                stream + "\r\n" + "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" + stream
                    + "Connection: close\r\n\r\n"
            )
            let (answer, closed) = try await connection.receive()
            #expect(closed)
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["401", "200", "401"], "\(answer)")
            let first = answer.components(separatedBy: "\r\n\r\n")[0].lowercased()
            #expect(first.contains("\r\ndate: ") && first.contains("\r\nserver: paynotify"), "\(first)")
            #expect(answer.contains(#""code":"invalid_token""#))
        }
    }

    /// A malformed request is `400` and the connection closes; a client that closes its side
    /// between requests has its connection closed; `Connection: close` is honoured.
    @Test func brokenAndClosingClients() async throws {
        try await withLiveApp { client, _ in
            let malformed = try RawConnection(port: client.port, receiveTimeout: .seconds(5))
            malformed.send("GET /v1/ops/events HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n")
            let (answer, closed) = try await malformed.receive()
            #expect(answer.hasPrefix("HTTP/1.1 400") && closed, "\(answer)")

            let leaving = try RawConnection(port: client.port, receiveTimeout: .seconds(5))
            leaving.send("GET /v1/orders/ord_a/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            leaving.finishSending()
            let (refusal, closedAfterRefusal) = try await leaving.receive()
            #expect(refusal.hasPrefix("HTTP/1.1 401") && closedAfterRefusal, "\(refusal)")

            let closing = try RawConnection(port: client.port, receiveTimeout: .seconds(5))
            closing.send("GET /orderpay?payid=ord_a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let (closingRefusal, closedAfterIt) = try await closing.receive()
            #expect(closingRefusal.hasPrefix("HTTP/1.1 401") && closedAfterIt, "\(closingRefusal)")
        }
    }
}
