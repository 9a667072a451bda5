import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A request as the test server received it.
struct ReceivedRequest: Sendable {
    var method: String
    /// The path with its query, as sent.
    var uri: String
    var headers: HTTPHeaders
    var body: [UInt8]

    var path: String { String(self.uri.prefix { $0 != "?" }) }
}

/// What the test server answers; `delay` holds the answer back (a hang, for deadlines).
struct CannedResponse: Sendable {
    var status: Int
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var delay: Duration?

    init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], delay: Duration? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
    }

    init(status: Int, headers: [(String, String)] = [], json: String) {
        self.init(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8))
    }
}

/// An HTTP/1.1 server on 127.0.0.1, a port of the system's choosing, that answers every request
/// with what `handler` returns for it (and the number of requests before it) and records them all.
final class TestHTTPServer: Sendable {
    typealias Handler = @Sendable (ReceivedRequest, Int) async -> CannedResponse

    let port: Int
    private let box: Box
    private let channel: any Channel
    private let task: Task<Void, Never>

    var baseURL: String { "http://127.0.0.1:\(self.port)" }
    /// Every request received so far, in order.
    var requests: [ReceivedRequest] { self.box.requests.withLock { $0 } }

    private init(port: Int, box: Box, channel: any Channel, task: Task<Void, Never>) {
        self.port = port
        self.box = box
        self.channel = channel
        self.task = task
    }

    /// Runs `body` with a server answering with `handler`, and stops the server after.
    static func with<Result>(
        _ handler: @escaping Handler,
        _ body: (TestHTTPServer) async throws -> Result
    ) async throws -> Result {
        let server = try await Self.start(handler)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    private final class Box: Sendable {
        let requests = Mutex<[ReceivedRequest]>([])
    }

    private static func start(_ handler: @escaping Handler) async throws -> TestHTTPServer {
        let box = Box()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        guard let port = server.channel.localAddress?.port else { throw TestServerError() }
        let task = Task {
            await withDiscardingTaskGroup { group in
                _ = try? await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { try? await Self.serve(connection, box: box, handler: handler) }
                    }
                }
            }
        }
        return TestHTTPServer(port: port, box: box, channel: server.channel, task: task)
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        box: Box,
        handler: Handler
    ) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let received):
                    head = received
                    body = []
                case .body(let buffer):
                    body += buffer.readableBytesView
                case .end:
                    guard let head else { continue }
                    let request = ReceivedRequest(
                        method: head.method.rawValue,
                        uri: head.uri,
                        headers: head.headers,
                        body: body
                    )
                    let index = box.requests.withLock { requests in
                        requests.append(request)
                        return requests.count - 1
                    }
                    let response = await handler(request, index)
                    if let delay = response.delay { try await Task.sleep(for: delay) }
                    var headers = HTTPHeaders(response.headers)
                    if response.status != 204 {
                        headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.count)")
                    }
                    try await outbound.write(
                        .head(
                            HTTPResponseHead(
                                version: .http1_1,
                                status: HTTPResponseStatus(statusCode: response.status),
                                headers: headers
                            )
                        )
                    )
                    if !response.body.isEmpty {
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
                    }
                    try await outbound.write(.end(nil))
                }
            }
        }
    }

    private func stop() async {
        try? await self.channel.close()
        self.task.cancel()
        await self.task.value
    }
}

struct TestServerError: Error {}
