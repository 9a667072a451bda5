import Synchronization

/// How fast calls to one provider may go: `perSecond` on average, `burst` at once.
public struct RateLimit: Sendable, Hashable {
    public let perSecond: Double
    public let burst: Int

    /// - Throws: unless `perSecond` is a finite number of at least 0.01 (a call every 100 s) and
    ///   `burst` at least one.
    public init(perSecond: Double, burst: Int) throws(ProviderConfigurationError) {
        guard perSecond >= 0.01, perSecond.isFinite, burst >= 1 else {
            throw ProviderConfigurationError("a rate limit needs a rate of at least 0.01/s and a burst of at least 1")
        }
        self.perSecond = perSecond
        self.burst = burst
    }

    private init(checkedPerSecond perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// WeChat Pay publishes no per-API limit; the figure quoted for its order API is 60/s per
    /// merchant, shared with the checkout's own calls. 20/s leaves that path most of it; a burst of
    /// 5 keeps any one second at 25 calls.
    public static let weChatPay = RateLimit(checkedPerSecond: 20, burst: 5)
    /// Alipay publishes no limit that was found; the same 20/s as WeChat Pay, which reconciliation
    /// (a few calls per order that missed its notification) never comes near.
    public static let alipay = RateLimit(checkedPerSecond: 20, burst: 5)
    /// Stripe allows 25 calls a second per endpoint in a sandbox (100 live), and each operation,
    /// `GET /v1/payment_intents/{id}` for every id, is one endpoint: 20/s with a burst of 5 never
    /// exceeds 25 in any second, so one setting is safe in both modes.
    public static let stripe = RateLimit(checkedPerSecond: 20, burst: 5)
}

/// One provider's ``TokenBucket`` behind a lock, shared by every call to it. The wait is decided
/// under the lock and slept outside it.
package final class RateLimiter: Sendable {
    private let bucket: Mutex<TokenBucket>

    package init(_ limit: RateLimit) {
        self.bucket = Mutex(TokenBucket(rate: limit.perSecond, burst: limit.burst))
    }

    /// Returns when the call may go.
    /// - Throws: `CancellationError` when the task is cancelled while waiting (its token is spent).
    package func acquire() async throws(CancellationError) {
        let now = ContinuousClock.now
        let wait = self.bucket.withLock { $0.take(now: now) }
        guard wait > .zero else { return }
        do {
            try await Task.sleep(until: now + wait, clock: .continuous)
        } catch {
            throw CancellationError()
        }
    }

    /// No call goes before `instant` (a provider's `Retry-After`).
    package func pause(until instant: ContinuousClock.Instant) {
        self.bucket.withLock { $0.pause(until: instant) }
    }
}
