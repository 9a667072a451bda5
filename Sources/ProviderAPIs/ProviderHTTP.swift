import AsyncHTTPClient
package import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
package import Payments

/// The one HTTP client every provider client sends through, and the rules all their calls share:
/// - TLS with the system's trust roots and the host name checked; redirects are never followed
///   (a `3xx` is handed to the client as an answer, which refuses it);
/// - each attempt has a deadline that covers the whole exchange, body included;
/// - a body is read to at most ``Configuration/maximumBodyBytes``; a longer one fails the call;
/// - the provider's ``RateLimiter`` is taken before every attempt;
/// - a `5xx`, a timeout, a connection that fails, or a client's ``ProviderVerdict/retry(_:)`` is
///   tried again after each of ``Configuration/retryDelays`` (250 ms, then 1 s, each plus up to
///   20 % jitter), then ends as ``ProviderCallError/unavailable(_:retryAfter:)``;
/// - a `429` ends the call at once as ``ProviderCallError/rateLimited(retryAfter:)`` and pauses
///   the limiter until `Retry-After` (1 s when absent), so that nothing else hammers the
///   provider meanwhile. It is never retried here: the caller decides when to come back.
///
/// Every other answer goes to the client's `interpret`, which verifies it before believing it.
/// Nothing here logs a header or a body: requests carry credentials.
///
/// Call ``shutdown()`` once every call has ended, before the process exits.
public final class ProviderHTTP: Sendable {
    public struct Configuration: Sendable {
        /// The pause before each retry; as many retries as entries.
        public var retryDelays: [Duration]
        /// Each pause is lengthened by a random fraction up to this, so that callers failing
        /// together do not come back together.
        public var jitter: Double
        /// The most of an answer read: provider answers are a few kilobytes.
        public var maximumBodyBytes: Int

        public init(
            retryDelays: [Duration] = [.milliseconds(250), .seconds(1)],
            jitter: Double = 0.2,
            maximumBodyBytes: Int = 1_048_576
        ) {
            self.retryDelays = retryDelays
            self.jitter = max(0, jitter)
            self.maximumBodyBytes = maximumBodyBytes
        }
    }

    /// A `Retry-After` beyond this is read as this: a pause of hours would stop reconciliation
    /// on one header's word.
    private static let longestRetryAfter = Duration.seconds(600)
    /// The limiter's pause after a `429` that says nothing about when to come back.
    private static let defaultRateLimitPause = Duration.seconds(1)

    private let client: HTTPClient
    private let configuration: Configuration
    private let logger: Logger

    /// - Parameter logger: where retries are reported (a notice each, naming the provider, the
    ///   operation and the reason, never a header or a body); by default nowhere.
    public init(
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "paynotify.provider-apis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.logger = logger
        var settings = HTTPClient.Configuration(
            tlsConfiguration: TLSConfiguration.makeClientConfiguration(),
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10))
        )
        // A connection that cannot be made fails the attempt, to be retried on this type's
        // schedule; left on, the client would keep trying until the attempt's deadline.
        settings.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: settings,
            backgroundActivityLogger: logger
        )
    }

    /// Shuts the HTTP client down; no call may be made after.
    public func shutdown() async throws {
        try await self.client.shutdown()
    }

    /// Sends what `request` builds, as often as the rules above allow, until `interpret` gives
    /// an answer or throws.
    ///
    /// - Parameters:
    ///   - operation: a name for logs and errors (`query`, `close`): never a URL, which may carry
    ///     ids a log need not hold.
    ///   - timeout: the deadline of each attempt.
    ///   - now: the caller's clock at the start; each attempt is given it plus the time elapsed,
    ///     to sign with and to check the answer's timestamp against.
    ///   - request: builds the attempt's request; called once per attempt, so that each is signed
    ///     afresh (a new nonce and timestamp).
    ///   - interpret: verifies and reads an answer that is neither a `429` nor a `5xx`.
    package func call<Answer: Sendable>(
        _ provider: Provider,
        _ operation: String,
        limiter: RateLimiter,
        timeout: Duration,
        now: Date,
        request: (Date) throws(ProviderCallError) -> ProviderRequest,
        interpret: (ProviderResponse, Date) throws(ProviderCallError) -> ProviderVerdict<Answer>
    ) async throws(ProviderCallError) -> Answer {
        let start = ContinuousClock.now
        func attemptNow() -> Date { now.addingTimeInterval(start.duration(to: .now).timeInterval) }
        var failure = "no attempt made"
        var retryAfter: Duration?
        let attempts = self.configuration.retryDelays.count + 1
        for attempt in 0..<attempts {
            if attempt > 0 {
                self.logger.notice(
                    "provider call failed; retrying",
                    metadata: [
                        "provider": "\(provider.rawValue)", "operation": "\(operation)",
                        "attempt": "\(attempt)", "reason": "\(failure)",
                    ]
                )
                let pause = self.configuration.retryDelays[attempt - 1]
                do {
                    try await Task.sleep(for: pause * Double.random(in: 1...(1 + self.configuration.jitter)))
                } catch {
                    throw .unavailable("\(operation) cancelled after \(failure)", retryAfter: nil)
                }
            }
            do {
                try await limiter.acquire()
            } catch {
                throw .unavailable("\(operation) cancelled while waiting for the rate limit", retryAfter: nil)
            }
            let outgoing = try request(attemptNow())
            let response: ProviderResponse
            switch await self.send(outgoing, timeout: timeout) {
            case .response(let received):
                response = received
            case .failed(let reason):
                failure = reason
                retryAfter = nil
                continue
            case .final(let error):
                throw error
            }
            if response.status == 429 {
                let said = Self.retryAfter(response.headers, now: attemptNow())
                limiter.pause(until: .now + (said ?? Self.defaultRateLimitPause))
                throw .rateLimited(retryAfter: said)
            }
            if response.status >= 500 {
                failure = "HTTP \(response.status)"
                retryAfter = Self.retryAfter(response.headers, now: attemptNow())
                continue
            }
            switch try interpret(response, attemptNow()) {
            case .answer(let answer):
                return answer
            case .retry(let reason):
                failure = reason
                retryAfter = nil
            }
        }
        throw .unavailable(
            "\(provider.rawValue) \(operation): \(failure), \(attempts) attempts",
            retryAfter: retryAfter
        )
    }

    private enum Attempt: Sendable {
        case response(ProviderResponse)
        /// Worth another attempt.
        case failed(String)
        /// Not worth another attempt.
        case final(ProviderCallError)
    }

    /// One exchange, bounded by `timeout` from the start to the body's last byte. (The HTTP
    /// client's own deadline ends when the head arrives, so the body is raced against a timer.)
    private func send(_ request: ProviderRequest, timeout: Duration) async -> Attempt {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if request.method != .GET || !request.body.isEmpty {
            outgoing.body = .bytes(request.body)
        }
        let prepared = outgoing
        let client = self.client
        let limit = self.configuration.maximumBodyBytes
        let deadline = ContinuousClock.now + timeout
        do {
            let received = try await withThrowingTaskGroup(of: ProviderResponse?.self) { group in
                group.addTask {
                    let response = try await client.execute(prepared, deadline: .now() + TimeAmount(timeout))
                    let body = try await response.body.collect(upTo: limit)
                    return ProviderResponse(
                        status: Int(response.status.code),
                        headers: response.headers,
                        body: Array(buffer: body)
                    )
                }
                group.addTask {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            guard let received else { return .failed("timed out after \(timeout)") }
            return .response(received)
        } catch is NIOTooManyBytesError {
            return .final(.unavailable("the answer is larger than \(limit) bytes", retryAfter: nil))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .failed("timed out after \(timeout)")
        } catch is CancellationError {
            return .final(.unavailable("cancelled", retryAfter: nil))
        } catch {
            return .failed("\(error)")
        }
    }

    /// `Retry-After` as seconds or an HTTP date, at most ``longestRetryAfter``; nil when absent
    /// or unreadable.
    private static func retryAfter(_ headers: HTTPHeaders, now: Date) -> Duration? {
        guard let text = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else {
            return nil
        }
        let seconds: Double
        if let delta = Int(text), delta >= 0 {
            seconds = Double(delta)
        } else {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            guard let date = formatter.date(from: text) else { return nil }
            seconds = max(0, date.timeIntervalSince(now).rounded(.up))
        }
        return min(.seconds(seconds), Self.longestRetryAfter)
    }
}

extension Duration {
    /// In seconds, as Foundation counts them.
    var timeInterval: TimeInterval {
        TimeInterval(self.components.seconds) + TimeInterval(self.components.attoseconds) / 1e18
    }
}
