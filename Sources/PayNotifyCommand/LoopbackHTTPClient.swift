import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client for the command's own requests to a PayNotify server (one request per
/// connection, no TLS): enough for `simulate`, without pulling a full client library into the
/// release binary.
struct LoopbackHTTPClient {
    struct Response {
        let status: Int
        let body: String
    }

    let host: String
    let port: Int

    func send(method: HTTPMethod, path: String, headers: [(String, String)], body: [UInt8]) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: "\(self.host):\(self.port)")
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var status = 0
            var received = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let responseHead): status = Int(responseHead.status.code)
                case .body(var chunk): received.writeBuffer(&chunk)
                case .end: return Response(status: status, body: String(buffer: received))
                }
            }
            throw ClientError(description: "the server closed the connection before answering")
        }
    }

    struct ClientError: Error, CustomStringConvertible {
        let description: String
    }
}
