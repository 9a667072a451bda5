import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import SSEGateway
import ServiceLifecycle
import Storage
import StreamingHTTP

/// `GET /v1/events` (API key): one Server-Sent Events stream of every order's events, for a
/// merchant backend that prefers holding a connection to receiving webhooks. Each event carries
/// its log id as `id:` and its type (``EventTypes``) as `event:`; `Last-Event-ID` (or
/// `?lastEventId=`) resumes after it on any instance, from the durable log, in the feed's order
/// (``OrderStore/feed(after:limit:)``): nothing skipped, nothing twice. `?types=` filters.
///
/// Merchant streams are few (a backend or two), so each is a loop of its own reading the log when
/// woken (``FeedDoorbell``), on Hummingbird's ordinary response path; at most
/// ``FeedDoorbell/limit`` are open per instance.
struct MerchantEventsController {
    let store: OrderStore
    let doorbell: FeedDoorbell
    let retry: Duration
    let heartbeat: Duration

    static let pageSize = 500
    /// How soon a stream reads again while committed events wait for an older transaction.
    static let heldBackPoll = Duration.milliseconds(25)

    func addRoutes(to group: RouterGroup<some RequestContext>) {
        group.get("/events") { request, _ in try await self.stream(request) }
    }

    private func stream(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let types = try query["types"].map { text in
            Set(try EventTypes.validated(text.split(separator: ",").map(String.init), field: "types"))
        }
        let resumeText = request.headers[.lastEventID] ?? query["lastEventId"].map(String.init)
        let start: FeedPosition
        if let resumeText {
            guard let id = Int64(resumeText), id > 0 else {
                throw invalid("Last-Event-ID", "must be an event id this stream sent")
            }
            guard let position = try await self.store.feedPosition(afterEvent: id) else {
                throw APIError(
                    .gone,
                    code: "event_not_in_log",
                    message:
                        "The log has no event \(id) to resume after; resynchronise with GET /v1/orders/{id} and reconnect without Last-Event-ID."
                )
            }
            start = position
        } else {
            start = try await self.store.feedHead()
        }
        guard let (listener, wakeup) = self.doorbell.open() else {
            throw APIError(
                .serviceUnavailable,
                code: "streams_full",
                message: "This instance has \(self.doorbell.limit) merchant event streams open; retry shortly.",
                headers: [.retryAfter: "5"]
            )
        }
        let matches: @Sendable (String) -> Bool = { type in types.map { $0.contains("*") || $0.contains(type) } ?? true
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache", .xAccelBuffering: "no",
            ],
            body: ResponseBody { writer in
                defer { self.doorbell.close(listener) }
                let stopping = Shared(false)
                try await withGracefulShutdownHandler {
                    try await writer.write(ByteBuffer(string: ServerSentEventEncoder.retry(self.retry)))
                    var position = start
                    while !stopping.withLock({ $0 }) {
                        let page = try await self.store.feed(after: position, limit: Self.pageSize)
                        position = page.next
                        var text = ""
                        for event in page.events {
                            guard let type = EventTypes.type(of: event), matches(type) else { continue }
                            text += ServerSentEventEncoder.encode(
                                ServerSentEvent(id: String(event.id), event: type, data: event.data)
                            )
                        }
                        if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                        if page.events.count == Self.pageSize { continue }
                        if page.heldBack {
                            // Committed events wait for an older transaction: look again soon.
                            await wakeup.wait(timeout: Self.heldBackPoll)
                        } else if !(await wakeup.wait(timeout: self.heartbeat)) {
                            try await writer.write(ByteBuffer(string: ServerSentEventEncoder.comment("keepalive")))
                        }
                    }
                } onGracefulShutdown: {
                    stopping.withLock { $0 = true }
                    wakeup.signal()
                }
                try await writer.finish(nil)
            }
        )
    }
}
