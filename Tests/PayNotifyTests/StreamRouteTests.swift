import Hummingbird
import Testing

@testable import PayNotify

@Suite("Stream routes")
struct StreamRouteTests {
    /// The requests the server answers apart from Hummingbird's connection loop (so a live stream
    /// holds no task) are exactly the stream routes' GETs, as the router matches them: it skips
    /// empty path segments, so `/v1/orders/ord_a/events/` and `//v1/ops/events` are stream routes
    /// too (before, they were served as streams on Hummingbird's own connection task).
    @Test(arguments: [
        ("/v1/orders/ord_a/events/", HTTPRequest.Method.get, true), ("//v1/ops/events", .get, true),
        ("/orderpay/?payid=ord_a", .get, true), ("/v1//orders/ord_a/events?token=t", .get, true),
        ("/", .get, false), ("", .get, false),
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
}
