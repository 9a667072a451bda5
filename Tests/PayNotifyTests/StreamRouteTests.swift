import Hummingbird
import NIOCore
import Testing

@testable import PayNotify

@Suite("Stream routes")
struct StreamRouteTests {
    /// The requests the server answers apart from Hummingbird's connection loop (so a live stream
    /// holds no task) are exactly the stream routes' GETs.
    @Test(arguments: [
        ("/v1/orders/ord_a/events?token=t", HTTPRequest.Method.get, true),
        ("/orderpay?payid=ord_a&token=t", .get, true),
        ("/v1/ops/events", .get, true),
        ("/v1/orders/ord_a/events", .options, false),
        ("/v1/orders/ord_a", .get, false),
        ("/v1/orders/ord_a/events/x", .get, false),
        ("/x/v1/orders/ord_a/events", .get, false),
        ("/healthz", .get, false),
        ("/v1/webhooks/sandbox", .post, false),
        ("/v1/ops/events?next=/v1/orders/a", .get, true), ("/healthz?then=/v1/ops/events", .get, false),
    ])
    func streamRequests(path: String, method: HTTPRequest.Method, isStream: Bool) {
        let head = HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path)
        #expect(StreamsController.isStreamRequest(head) == isStream)
    }

    /// A live stream's text is written as one chunk of the response's chunked body: the length is
    /// the text's bytes (not its characters) in hex.
    @Test(arguments: [
        ("data: {}\n\n", "a\r\ndata: {}\n\n\r\n"),
        ("é", "2\r\né\r\n"),
        (String(repeating: "x", count: 300), "12c\r\n" + String(repeating: "x", count: 300) + "\r\n"),
    ])
    func liveTextIsFramedAsAChunk(text: String, framed: String) {
        #expect(String(buffer: LiveStreamConnection.chunk(text)) == framed)
    }
}
