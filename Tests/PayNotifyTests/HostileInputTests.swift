import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PayNotifyClient
import TestSupport
import Testing

/// A raw TCP connection to a test server, for requests no well-behaved client would send.
private struct RawConnection: ~Copyable {
    let socket: Int32

    init(port: Int, receiveTimeout: Int) throws {
        self.socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(self.socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(self.socket) }

    func send(_ text: String) { self.send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(self.socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What arrives until the server closes the connection or the timeout passes; `closed` tells which.
    func receive() -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(self.socket, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
            } else {
                return (String(decoding: received, as: UTF8.self), count == 0)
            }
        }
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
            let connection = try RawConnection(port: client.port, receiveTimeout: 2)
            connection.send(
                "POST /v1/webhooks/sandbox HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 50000000\r\n\r\n"
            )
            connection.send([UInt8](repeating: UInt8(ascii: "x"), count: 100_000))
            let (answer, _) = connection.receive()
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
        }
    }

    /// A client that never finishes its headers is cut off after the idle timeout.
    @Test func slowHeadersAreCutOff() async throws {
        try await withLiveApp(overrides: ["PAYNOTIFY_IDLE_TIMEOUT_SECONDS": "1"]) { client, _ in
            let started = ContinuousClock.now
            let connection = try RawConnection(port: client.port, receiveTimeout: 10)
            connection.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            let (answer, closed) = connection.receive()
            #expect(closed && answer.isEmpty)
            #expect(ContinuousClock.now - started < .seconds(5))
            // A stream being answered is never idle, however long its silences.
            let order = try await client.createOrder()
            try await client.stream(path: order.streamPath, deadline: .now() + .seconds(4)) { stream in
                _ = try await stream.nextEvent()
                try await Task.sleep(for: .seconds(2))
                try await client.sandbox("processing", order: order.id)
                #expect(try await stream.nextEvent()?.name == "status")
            }
        }
    }
}
