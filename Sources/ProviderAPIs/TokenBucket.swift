/// A token bucket as a pure value: `rate` tokens a second, at most `burst` saved up. Time is
/// given, never read.
///
/// Every ``take(now:)`` reserves a token and says how long the caller must wait before using it,
/// so callers that are told to wait are queued in the order they asked (the generic cell rate
/// algorithm: one "theoretical arrival time" instead of a token count). Whatever the instants
/// given, the calls it lets go within any span of `t` seconds number at most `rate × t + burst`.
package struct TokenBucket: Sendable, Hashable {
    /// Tokens a second; above zero.
    package let rate: Double
    /// Tokens that may be spent at once after a quiet spell; at least one.
    package let burst: Int
    /// When the next token is due if calls came as fast as allowed: the bucket is full at any
    /// instant from `due` on. `nil` before the first call.
    private var due: ContinuousClock.Instant?

    /// - Precondition: `rate` finite and at least 0.01, `burst` at least one (checked where the
    ///   configuration is built: ``RateLimit/init(perSecond:burst:)``).
    package init(rate: Double, burst: Int) {
        precondition(rate >= 0.01 && rate.isFinite && burst >= 1, "a token bucket needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
    }

    /// The time between two tokens, in whole nanoseconds rounded up: never shorter than `1/rate`,
    /// and exact for the rates configured (20/s is 50 ms).
    private var interval: Duration { .nanoseconds(Int64((1e9 / self.rate).rounded(.up))) }

    /// Takes a token and returns how long to wait before the call may go: `.zero` when a token
    /// was free at `now`. The token is the caller's whatever it does next (cancelled callers do
    /// not give theirs back; the limiter errs on the slow side).
    package mutating func take(now: ContinuousClock.Instant) -> Duration {
        let due = max(self.due ?? now, now)
        // The `burst - 1` tokens beyond the one being taken may be spent ahead of time.
        let earliest = due - self.interval * (self.burst - 1)
        self.due = due + self.interval
        return earliest > now ? now.duration(to: earliest) : .zero
    }

    /// Lets no call go before `instant`, and none in a burst right after it: from then on calls go
    /// at `rate`. For a provider's `429` with `Retry-After`. A pause that ends earlier than one
    /// already in force changes nothing.
    package mutating func pause(until instant: ContinuousClock.Instant) {
        let resume = instant + self.interval * (self.burst - 1)
        self.due = max(self.due ?? resume, resume)
    }
}
