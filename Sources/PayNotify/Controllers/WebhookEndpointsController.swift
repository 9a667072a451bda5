import Foundation
import HTTPTypes
import Hummingbird
import MerchantWebhooks
import Storage

/// The merchant's webhook endpoints (API key): register, list, read, change, delete, and rotate
/// an endpoint's signing secret. The secret is shown whole only when made: at registration and
/// on rotation.
struct WebhookEndpointsController {
    let store: MerchantWebhookStore
    let sender: WebhookSender
    /// Told of every change that can give the dispatcher work (an endpoint made, enabled, or its
    /// messages queued again).
    let signals: DispatcherSignals
    let maximumBodyBytes: Int

    /// How long a rotated-out secret keeps signing, unless the request says otherwise.
    static let defaultOverlap = 86_400

    func addRoutes(to group: RouterGroup<some RequestContext>) {
        group.post("/webhook-endpoints") { request, context in try await self.create(request, context: context) }
        group.get("/webhook-endpoints") { _, _ in
            let endpoints = try await self.store.endpoints()
            return ResponseJSON.response(.ok, ["data": .array(endpoints.map { .object(Self.fields(of: $0)) })])
        }
        group.get("/webhook-endpoints/{id}") { _, context in
            Self.response(.ok, try await self.existing(try context.parameters.require("id")))
        }
        group.patch("/webhook-endpoints/{id}") { request, context in
            try await self.update(id: try context.parameters.require("id"), request: request, context: context)
        }
        group.delete("/webhook-endpoints/{id}") { _, context in
            guard try await self.store.deleteEndpoint(id: try context.parameters.require("id")) else {
                throw Self.notFound
            }
            return Response(status: .noContent)
        }
        group.post("/webhook-endpoints/{id}/rotate-secret") { request, context in
            try await self.rotate(id: try context.parameters.require("id"), request: request, context: context)
        }
        group.get("/webhook-endpoints/{id}/attempts") { request, context in
            try await self.attempts(id: try context.parameters.require("id"), request: request)
        }
        group.post("/webhook-endpoints/{id}/recover") { request, context in
            try await self.recover(id: try context.parameters.require("id"), request: request, context: context)
        }
        group.post("/webhook-messages/{id}/resend") { _, context in
            guard try await self.store.resend(messageID: try context.parameters.require("id")) else {
                throw APIError(.notFound, code: "not_found", message: "No webhook message has this id.")
            }
            self.signals.endpointsDidChange()
            return ResponseJSON.response(.accepted, ["queued": .bool(true)])
        }
    }

    // MARK: Handlers

    private struct CreateRequest: Decodable {
        let url: String?
        let events: [String]?
        let description: String?
    }

    private func create(_ request: Request, context: some RequestContext) async throws -> Response {
        let body: CreateRequest = try await RequestJSON.decode(request, context: context, limit: self.maximumBodyBytes)
        guard let url = body.url else { throw invalid("url", "is required: the https URL to deliver to") }
        try await self.check(url: url)
        let events = try EventTypes.validated(body.events ?? ["*"], field: "events")
        try Self.check(description: body.description)
        let secret = WebhookSecret.generate()
        let endpoint = try await self.store.createEndpoint(
            url: url,
            events: events,
            description: body.description,
            secret: secret.text
        )
        self.signals.endpointsDidChange()
        return Self.response(.created, endpoint, showingSecret: true)
    }

    private func update(id: String, request: Request, context: some RequestContext) async throws -> Response {
        let body: [String: JSONValue] = try await RequestJSON.decode(
            request,
            context: context,
            limit: self.maximumBodyBytes
        )
        var change = WebhookEndpointChange()
        for (key, value) in body {
            switch (key, value) {
            case ("url", .string(let url)):
                try await self.check(url: url)
                change.url = url
            case ("events", .array(let values)):
                let names = try values.map { value -> String in
                    guard case .string(let name) = value else { throw invalid("events", "must be a list of strings") }
                    return name
                }
                change.events = try EventTypes.validated(names, field: "events")
            case ("description", .null):
                change.description = .some(nil)
            case ("description", .string(let text)):
                try Self.check(description: text)
                change.description = text
            case ("enabled", .bool(let enabled)):
                change.enabled = enabled
            case ("url", _), ("events", _), ("description", _), ("enabled", _):
                throw invalid(key, "has the wrong type")
            default:
                throw invalid(key, "is not a field of an endpoint (url, events, description, enabled)")
            }
        }
        guard let endpoint = try await self.store.updateEndpoint(id: id, change) else { throw Self.notFound }
        self.signals.endpointsDidChange()
        return Self.response(.ok, endpoint)
    }

    private struct RotateRequest: Decodable {
        let expirePreviousIn: Int?

        enum CodingKeys: String, CodingKey {
            case expirePreviousIn = "expire_previous_in"
        }
    }

    private func rotate(id: String, request: Request, context: some RequestContext) async throws -> Response {
        // An empty body is the default overlap.
        let buffer = try await request.body.collect(upTo: self.maximumBodyBytes)
        let body =
            buffer.readableBytes == 0
            ? RotateRequest(expirePreviousIn: nil)
            : try await RequestJSON.decode(
                Request(head: request.head, body: .init(buffer: buffer)),
                context: context,
                limit: self.maximumBodyBytes
            )
        let overlap = body.expirePreviousIn ?? Self.defaultOverlap
        guard (0...604_800).contains(overlap) else {
            throw invalid("expire_previous_in", "must be 0 to 604800 seconds (7 days)")
        }
        guard
            let endpoint = try await self.store.rotateSecret(
                id: id,
                newSecret: WebhookSecret.generate().text,
                overlap: .seconds(overlap)
            )
        else { throw Self.notFound }
        return Self.response(.ok, endpoint, showingSecret: true)
    }

    /// `?status=failed|succeeded`, `limit` (1–100, default 20), `before` (an attempt id, for the
    /// next page): newest first, with `next_before` when there may be more.
    private func attempts(id: String, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let succeeded: Bool?
        switch query["status"].map(String.init) {
        case nil: succeeded = nil
        case "failed": succeeded = false
        case "succeeded": succeeded = true
        case let other?: throw invalid("status", "must be failed or succeeded, not \(other)")
        }
        let limit =
            try query["limit"].map { text in
                guard let value = Int(text), (1...100).contains(value) else {
                    throw invalid("limit", "must be 1 to 100")
                }
                return value
            } ?? 20
        let before = try query["before"].map { text in
            guard let value = Int64(text), value > 0 else { throw invalid("before", "must be an attempt id") }
            return value
        }
        _ = try await self.existing(id)
        let attempts = try await self.store.attempts(endpointID: id, succeeded: succeeded, before: before, limit: limit)
        let data: [JSONValue] = attempts.map { attempt in
            .object([
                "id": .integer(attempt.id),
                "message_id": .string(attempt.messageID),
                "attempted_at": .string(ResponseJSON.timestamp(attempt.attemptedAt)),
                "duration_ms": .integer(attempt.durationMilliseconds),
                "succeeded": .bool(attempt.succeeded),
                "status_code": attempt.statusCode.map(JSONValue.integer) ?? .null,
                "response_body": attempt.responseBody.map(JSONValue.string) ?? .null,
                "error": attempt.error.map(JSONValue.string) ?? .null,
            ])
        }
        let next: JSONValue = attempts.count == limit ? attempts.last.map { .integer($0.id) } ?? .null : .null
        return ResponseJSON.response(.ok, ["data": .array(data), "next_before": next])
    }

    private struct RecoverRequest: Decodable {
        let since: String?
        let until: String?
    }

    /// Queues again the endpoint's messages that failed for good, written in `since..<until`.
    private func recover(id: String, request: Request, context: some RequestContext) async throws -> Response {
        let body: RecoverRequest = try await RequestJSON.decode(request, context: context, limit: self.maximumBodyBytes)
        func date(_ field: String, _ text: String?) throws -> Date? {
            guard let text else { return nil }
            guard let date = try? Date(text, strategy: .iso8601) else {
                throw invalid(field, "must be an ISO 8601 time such as 2026-12-01T00:00:00Z")
            }
            return date
        }
        guard let since = try date("since", body.since) else { throw invalid("since", "is required") }
        let until = try date("until", body.until)
        if let until, until <= since { throw invalid("until", "must be after since") }
        let endpoint = try await self.existing(id)
        let recovered = try await self.store.recover(endpointID: id, since: since, until: until)
        self.signals.endpointsDidChange()
        return ResponseJSON.response(
            .accepted,
            ["recovered": .integer(Int64(recovered)), "endpoint_enabled": .bool(endpoint.enabled)]
        )
    }

    private func existing(_ id: String) async throws -> WebhookEndpoint {
        guard let endpoint = try await self.store.endpoint(id: id) else { throw Self.notFound }
        return endpoint
    }

    // MARK: Checks

    private func check(url: String) async throws {
        if let refusal = await self.sender.refusal(of: url) { throw invalid("url", refusal) }
    }

    private static func check(description: String?) throws {
        guard let description else { return }
        guard description.unicodeScalars.count <= 500, !description.unicodeScalars.contains("\0") else {
            throw invalid("description", "must be at most 500 characters, without U+0000")
        }
    }

    // MARK: Responses

    private static let notFound = APIError(.notFound, code: "not_found", message: "No webhook endpoint has this id.")

    static func fields(of endpoint: WebhookEndpoint) -> [String: JSONValue] {
        func time(_ date: Date?) -> JSONValue { date.map { .string(ResponseJSON.timestamp($0)) } ?? .null }
        return [
            "id": .string(endpoint.id),
            "url": .string(endpoint.url),
            "events": .array(endpoint.events.map(JSONValue.string)),
            "description": endpoint.description.map(JSONValue.string) ?? .null,
            "enabled": .bool(endpoint.enabled),
            "disabled_reason": endpoint.disabledReason.map(JSONValue.string) ?? .null,
            "previous_secret_expires_at": time(endpoint.previousSecret == nil ? nil : endpoint.previousSecretExpiresAt),
            "failing_since": time(endpoint.failingSince),
            "last_success_at": time(endpoint.lastSuccessAt),
            "last_failure_at": time(endpoint.lastFailureAt),
            "created_at": time(endpoint.createdAt),
            "updated_at": time(endpoint.updatedAt),
        ]
    }

    private static func response(
        _ status: HTTPResponse.Status,
        _ endpoint: WebhookEndpoint,
        showingSecret: Bool = false
    )
        -> Response
    {
        var fields = Self.fields(of: endpoint)
        if showingSecret { fields["secret"] = .string(endpoint.secret) }
        return ResponseJSON.response(status, fields)
    }
}
