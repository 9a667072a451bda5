public import Foundation
public import Payments

/// A provider's webhook request as received: header names lower-cased, the body's exact bytes.
public struct WebhookRequest: Sendable {
    public let headers: [String: String]
    public let body: [UInt8]

    /// - Parameter headers: names in any case; repeated headers joined with ", " as HTTP allows.
    public init(headers: [String: String], body: [UInt8]) {
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { "\($0), \($1)" })
        self.body = body
    }

    public func header(_ name: String) -> String? { self.headers[name.lowercased()] }
}

/// Why a delivery was refused before anything was recorded.
public struct WebhookRejection: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// A required header is missing or malformed.
        case missingSignature = "missing_signature"
        /// No configured secret or key produced the signature.
        case invalidSignature = "invalid_signature"
        /// The signed timestamp is outside the tolerance window (either way).
        case timestampOutOfTolerance = "timestamp_out_of_tolerance"
        /// Signed correctly but not a payload this provider sends.
        case malformedPayload = "malformed_payload"
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// Signature problems are the sender's credentials (401); everything else is the request (400).
    public var status: Int { self.reason == .invalidSignature || self.reason == .missingSignature ? 401 : 400 }

    public var description: String { "\(self.reason.rawValue): \(self.message)" }
}

extension WebhookRejection {
    /// A delivery dated outside the tolerance, `age` seconds before now (after, when negative).
    /// `what` is how its date was given (`signed`, `notified`). The seconds are written from the
    /// `Double` itself: a correctly signed timestamp may be anywhere in `Int64`'s range, and an age
    /// beyond `Int`'s would trap in the conversion.
    static func outOfTolerance(_ what: String, age: TimeInterval, tolerance: TimeInterval) -> WebhookRejection {
        func seconds(_ value: TimeInterval) -> String { String(format: "%.0f", value.rounded(.towardZero)) }
        return WebhookRejection(
            .timestampOutOfTolerance,
            "\(what) \(seconds(abs(age))) s \(age > 0 ? "ago" : "in the future"); the tolerance is \(seconds(tolerance)) s"
        )
    }
}

/// What to send back to the provider: each has its own expected answer.
public struct WebhookReply: Sendable, Hashable {
    public let status: Int
    public let contentType: String?
    public let body: [UInt8]

    public init(status: Int, contentType: String?, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    static func json(_ status: Int, _ text: String) -> Self {
        Self(status: status, contentType: "application/json; charset=utf-8", body: Array(text.utf8))
    }
}

/// One payment provider's webhook scheme: verify the raw bytes, map them to one canonical delivery,
/// and answer the way that provider expects.
///
/// - Important: ``verify(_:now:)`` authenticates the exact bytes received before parsing anything,
///   compares in constant time, accepts any of several secrets or keys (rotation), and enforces the
///   timestamp window in both directions against the injected time.
public protocol WebhookAdapter: Sendable {
    var provider: Provider { get }

    /// Authenticates and parses a delivery. A type the service does not act on comes back with a
    /// `nil` event: it is recorded and acknowledged, so the provider stops sending it.
    func verify(_ request: WebhookRequest, now: Date) throws(WebhookRejection) -> WebhookDelivery

    /// The answer for a delivery that is safely recorded (applied, duplicate or ignored alike).
    var acknowledgement: WebhookReply { get }

    /// The answer for a refused delivery, or (`rejection == nil`) for a temporary failure on our
    /// side that the provider should retry.
    func failure(_ rejection: WebhookRejection?) -> WebhookReply
}

extension WebhookAdapter {
    /// A JSON body `{"error": {"code", "message"}}`, the API's shape, for providers with no format of their own.
    func jsonFailure(_ rejection: WebhookRejection?) -> WebhookReply {
        guard let rejection else {
            return .json(503, #"{"error":{"code":"temporarily_unavailable","message":"retry later"}}"#)
        }
        return .json(
            rejection.status,
            #"{"error":{"code":"\#(rejection.reason.rawValue)","message":\#(jsonString(rejection.message))}}"#
        )
    }
}

/// Decodes a signed payload, turning any decoding failure into a ``WebhookRejection/Reason/malformedPayload``
/// that says what was expected (`what`, such as "a Stripe event").
func decodePayload<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(WebhookRejection) -> T {
    do {
        return try JSONDecoder().decode(type, from: Data(bytes))
    } catch {
        throw WebhookRejection(.malformedPayload, "the body is not \(what): \(error)")
    }
}

/// A JSON string literal for `text`, escaped.
func jsonString(_ text: String) -> String {
    let data =
        (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}
