import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import SSEGateway
import Signatures
import StreamingHTTP

/// The Server-Sent Events routes: an order's stream for its checkout page
/// (`GET /v1/orders/{id}/events`, and the seeds' `GET /orderpay?payid={id}`) and the ops stream
/// (`GET /v1/ops/events`). Routes and authorization only: the response, and the connection it
/// holds, are ``StreamingHTTP``'s (`Response.eventStream`), the streams' lives the gateway's.
///
/// Every refusal is answered before the stream starts, with a status and a JSON body (through
/// ``JSONErrorMiddleware``, as every other error): `401` for a missing, expired or wrong token (the
/// same answer whether or not the order exists), `400` for a malformed Last-Event-ID, `204` when
/// the client already has the order's `finish` (EventSource then stops for good), `429` or `503`
/// with `Retry-After` when a limit is reached. Order streams may be read across origins
/// (``AllowedOrigins``, with Hummingbird's `CORSMiddleware`); the ops stream may not.
struct StreamsController {
    let streams: OrderStreams
    let ops: OpsFeed
    let tokens: StreamTokenSigner
    /// SHA-256 of the admin token; `nil` when the ops stream is disabled.
    let adminTokenDigest: [UInt8]?
    let settings: StreamSettings
    let origins: AllowedOrigins
    let addresses: ClientAddressResolver
    /// How long a stream's client has to take its snapshot and replay (the server's idle timeout).
    let replayDeadline: Duration
    let metrics: ServiceMetrics
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<AppRequestContext>) {
        // CORS outside, then the error middleware: a refusal leaves as JSON with its CORS headers.
        let orderStreams = router.group()
            .add(middleware: CrossOriginStreams(origins: self.origins))
            .add(middleware: JSONErrorMiddleware())
        orderStreams.get("/v1/orders/{id}/events") { request, context in
            try await self.countingRefusals {
                try await self.orderStream(request, orderID: try context.parameters.require("id"), context: context)
            }
        }
        orderStreams.get("/orderpay") { request, context in
            try await self.countingRefusals {
                guard let orderID = request.uri.queryParameters["payid"].map(String.init), !orderID.isEmpty else {
                    throw APIError(.badRequest, code: "missing_payid", message: "Name the order as ?payid=<order id>.")
                }
                return try await self.orderStream(request, orderID: orderID, context: context)
            }
        }
        // A preflight from an allowed origin is answered by the CORS middleware; any other, here.
        for path in ["/v1/orders/{id}/events", "/orderpay"] {
            orderStreams.on(RouterPath(path), method: .options) { _, _ in Response(status: .noContent) }
        }
        router.get("/v1/ops/events") { request, context in
            try await self.countingRefusals { try await self.opsStream(request, context: context) }
        }
    }

    /// Whether a request is for one of the stream routes (the server answers those apart, so that a
    /// live stream holds no task: ``StreamRequests``). Asked of every request the server reads
    /// first on a connection, webhooks included, so it cuts the query off the target instead of
    /// parsing a `URI`. Empty segments are skipped, as the router skips them.
    static func isStreamRequest(_ head: HTTPRequest) -> Bool {
        guard head.method == .get, let target = head.path else { return false }
        let parts = target.prefix { $0 != "?" }.split(separator: "/")
        switch parts.count {
        case 1: return parts[0] == "orderpay"
        case 3: return parts[0] == "v1" && parts[1] == "ops" && parts[2] == "events"
        case 4: return parts[0] == "v1" && parts[1] == "orders" && parts[3] == "events"
        default: return false
        }
    }

    // MARK: Order streams

    private func orderStream(_ request: Request, orderID: String, context: AppRequestContext) async throws -> Response {
        let token = bearerToken(request) ?? request.uri.queryParameters["token"].map(String.init)
        guard let token, self.tokens.isValid(token, orderID: orderID, now: self.now()) else {
            throw APIError(
                .unauthorized,
                code: "invalid_token",
                message: "Send the order's stream token as ?token= or Authorization: Bearer; it may have expired.",
                headers: [.wwwAuthenticate: #"Bearer realm="paynotify""#]
            )
        }
        let lastEventID: Int64?
        do {
            lastEventID = try LastEventID.parse(
                request.headers[.lastEventID] ?? request.uri.queryParameters["lastEventId"].map(String.init)
            )
        } catch {
            throw APIError(
                .badRequest,
                code: "invalid_last_event_id",
                message: "Last-Event-ID must be an event id from this stream (digits); got \"\(error.text)\"."
            )
        }
        let channel = context.channel
        let opening: OrderStreams.Opening
        do {
            opening = try await self.streams.open(
                orderID: orderID,
                lastEventID: lastEventID,
                clientAddress: ClientAddressResolver.limitKey(
                    for: self.addresses.address(
                        peer: context.remoteAddress,
                        forwardedFor: request.headers[.xForwardedFor]
                    )
                ),
                // The handler may be blocked in a write to this client: closing the connection
                // fails that write and ends the stream.
                onOverflow: { channel.close(promise: nil) }
            )
        } catch StreamOpeningError.orderNotFound {
            throw APIError(.notFound, code: "order_not_found", message: "No order has this id.")
        } catch StreamOpeningError.refused(let refusal) {
            throw Self.apiError(for: refusal)
        }
        switch opening {
        case .finished:
            return Response(status: .noContent)
        case .stream(let session):
            self.metrics.streamOpened(kind: "order")
            return .eventStream(
                on: channel,
                request: request,
                headers: [:],
                startDeadline: self.replayDeadline,
                onShutdown: session.end,
                onClientGone: session.cancel,
                start: { write, sink, onEnd in try await session.start(write: write, sink: sink, onEnd: onEnd) == nil }
            )
        }
    }

    private static func apiError(for refusal: StreamRefusal) -> APIError {
        switch refusal {
        case .tooManyFromAddress:
            APIError(
                .tooManyRequests,
                code: "too_many_streams_from_address",
                message: "This address has as many streams open as it may; close one or retry later.",
                headers: [.retryAfter: "5"]
            )
        case .tooManyForOrder:
            APIError(
                .tooManyRequests,
                code: "too_many_streams_for_order",
                message: "This order has as many streams open as it may; close one or retry later.",
                headers: [.retryAfter: "5"]
            )
        case .instanceFull:
            APIError(
                .serviceUnavailable,
                code: "streams_full",
                message: "This instance holds as many streams as it may; retry (another instance may have room).",
                headers: [.retryAfter: "2"]
            )
        case .closed:
            APIError(
                .serviceUnavailable,
                code: "shutting_down",
                message: "This instance is stopping; retry to reach another.",
                headers: [.retryAfter: "1"]
            )
        }
    }

    // MARK: Ops stream

    private func opsStream(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let adminTokenDigest else {
            throw APIError(
                .notFound,
                code: "ops_disabled",
                message: "The ops stream is disabled on this server: set PAYNOTIFY_ADMIN_TOKEN."
            )
        }
        let presented = bearerToken(request) ?? request.uri.queryParameters["token"].map(String.init)
        guard let presented, constantTimeEquals(Array(SHA256.hash(data: Array(presented.utf8))), adminTokenDigest)
        else {
            throw APIError(
                .unauthorized,
                code: "invalid_token",
                message: "Send the admin token as ?token= or Authorization: Bearer.",
                headers: [.wwwAuthenticate: #"Bearer realm="paynotify-ops""#]
            )
        }
        let channel = context.channel
        let subscription: OpsFeed.Subscription
        do {
            subscription = try self.ops.subscribe(onOverflow: { channel.close(promise: nil) })
        } catch {
            throw Self.apiError(for: error)
        }
        self.metrics.streamOpened(kind: "ops")
        let (ops, settings) = (self.ops, self.settings)
        return .eventStream(
            on: channel,
            request: request,
            headers: [:],
            startDeadline: self.replayDeadline,
            onShutdown: { ops.end(subscription) },
            onClientGone: { ops.unsubscribe(subscription) },
            start: { write, sink, onEnd in
                try await subscription.start(feed: ops, settings: settings, write: write, sink: sink, onEnd: onEnd)
            }
        )
    }

    /// Every code a stream request is refused with (metrics export each from the start).
    static let refusalReasons = [
        "missing_payid", "invalid_token", "invalid_last_event_id", "order_not_found", "too_many_streams_from_address",
        "too_many_streams_for_order", "streams_full", "shutting_down", "ops_disabled",
    ]

    /// Counts every refusal by its code for the metrics, then lets it answer.
    private func countingRefusals(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            self.metrics.streamRefused(reason: error.code)
            throw error
        }
    }
}

/// Hummingbird's `CORSMiddleware` for the order streams, applied to the allowed origins only: a
/// request from any other origin gets no CORS headers (its page then cannot read the stream), and
/// its preflight a bare `204`. The preflight allows what EventSource and a fetch-based client send:
/// `Authorization`, `Last-Event-ID` and `Cache-Control` (EventSource sends none of them on its
/// first request, so it needs no preflight at all).
private struct CrossOriginStreams: RouterMiddleware {
    typealias Context = AppRequestContext

    private let origins: AllowedOrigins
    private let cors: CORSMiddleware<AppRequestContext>

    init(origins: AllowedOrigins) {
        self.origins = origins
        self.cors = CORSMiddleware(
            allowOrigin: origins == .any ? .all : .originBased,
            allowHeaders: [.authorization, .lastEventID, .cacheControl],
            allowMethods: [.get],
            maxAge: .seconds(600)
        )
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard self.origins.allows(request.headers[.origin]) else { return try await next(request, context) }
        return try await self.cors.handle(request, context: context, next: next)
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
