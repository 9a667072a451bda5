public import Foundation

/// A merchant's webhook endpoint as stored.
public struct WebhookEndpoint: Sendable, Hashable {
    public let id: String
    public let url: String
    /// The event types delivered; `*` is all.
    public let events: [String]
    public let description: String?
    public let enabled: Bool
    /// Why the service disabled it (`410 Gone`, failing for days); `nil` otherwise.
    public let disabledReason: String?
    /// `whsec_…`: the current signing secret.
    public let secret: String
    /// The secret before the last rotation, while it still signs beside the current one.
    public let previousSecret: String?
    public let previousSecretExpiresAt: Date?
    /// The first failure since the last success; `nil` while healthy.
    public let failingSince: Date?
    public let lastSuccessAt: Date?
    public let lastFailureAt: Date?
    public let createdAt: Date
    public let updatedAt: Date
}

/// What may change on an endpoint (`PATCH`): a `nil` field stays as it is; `description` is
/// cleared with `.some(nil)`.
public struct WebhookEndpointChange: Sendable, Hashable {
    public var url: String?
    public var events: [String]?
    public var description: String??
    public var enabled: Bool?

    public init(url: String? = nil, events: [String]? = nil, description: String?? = nil, enabled: Bool? = nil) {
        self.url = url
        self.events = events
        self.description = description
        self.enabled = enabled
    }
}

/// A message claimed for delivery, with what its attempt needs.
public struct ClaimedMessage: Sendable, Hashable {
    public let id: String
    public let endpointID: String
    public let url: String
    public let payload: String
    /// The attempts made before this one.
    public let previousAttempts: Int
    /// The current secret first, then the previous one while it still signs.
    public let secrets: [String]
}

/// What one attempt came to.
public struct AttemptOutcome: Sendable, Hashable {
    public enum Next: Sendable, Hashable {
        /// 2xx: delivered.
        case delivered
        /// Failed; try again after this long.
        case retry(after: Duration)
        /// Failed, and the schedule is used up.
        case exhausted
        /// `410 Gone`: the endpoint asked never to be called again.
        case disableEndpoint
    }

    public var next: Next
    public var statusCode: Int?
    /// The first 1 KB of the response body.
    public var responseBody: String?
    /// Why no status came (timeout, refused, TLS, a refused address).
    public var error: String?
    public var duration: Duration

    public init(next: Next, statusCode: Int?, responseBody: String?, error: String?, duration: Duration) {
        self.next = next
        self.statusCode = statusCode
        self.responseBody = responseBody
        self.error = error
        self.duration = duration
    }
}

/// One attempt to deliver a message, as recorded.
public struct WebhookAttempt: Sendable, Hashable {
    public let id: Int64
    public let messageID: String
    public let attemptedAt: Date
    public let durationMilliseconds: Int64
    public let succeeded: Bool
    /// The HTTP status, or `nil` when none came (then ``error`` says why).
    public let statusCode: Int64?
    /// The first 1 KB of the answer.
    public let responseBody: String?
    public let error: String?
}

/// How an endpoint is doing: whether it takes deliveries, since when it fails, and what waits for it.
public struct WebhookEndpointHealth: Sendable, Hashable {
    public let id: String
    public let url: String
    public let enabled: Bool
    public let failingSince: Date?
    public let lastSuccessAt: Date?
    /// Messages not delivered yet (due now or later).
    public let backlog: Int
    /// How long the oldest of them has waited; `nil` when none does.
    public let oldestPendingSeconds: Double?
}
