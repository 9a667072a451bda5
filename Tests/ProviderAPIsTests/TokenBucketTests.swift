import ProviderAPIs
import Testing

@Suite struct TokenBucketTests {
    private let start = ContinuousClock.now

    /// A full bucket lets `burst` calls go at once, then one every `1/rate`.
    @Test func burstThenRate() {
        var bucket = TokenBucket(rate: 20, burst: 5)
        let waits = (0..<8).map { _ in bucket.take(now: self.start) }
        #expect(
            waits == [.zero, .zero, .zero, .zero, .zero, .milliseconds(50), .milliseconds(100), .milliseconds(150)]
        )
    }

    /// After a quiet spell the bucket refills to `burst`, never beyond.
    @Test func refillsUpToBurst() {
        var bucket = TokenBucket(rate: 10, burst: 3)
        for _ in 0..<3 { _ = bucket.take(now: self.start) }
        let later = self.start + .seconds(60)
        let waits = (0..<4).map { _ in bucket.take(now: later) }
        #expect(waits == [.zero, .zero, .zero, .milliseconds(100)])
    }

    /// A pause holds every call until its end, and the calls after it go at `rate`, not in a burst.
    @Test func pauseHoldsCallsThenResumesAtRate() {
        var bucket = TokenBucket(rate: 10, burst: 5)
        bucket.pause(until: self.start + .seconds(2))
        #expect(bucket.take(now: self.start) == .seconds(2))
        #expect(bucket.take(now: self.start) == .milliseconds(2_100))
        #expect(bucket.take(now: self.start + .seconds(3)) == .zero)
        // A shorter pause than the one in force changes nothing.
        var paused = TokenBucket(rate: 10, burst: 1)
        paused.pause(until: self.start + .seconds(5))
        paused.pause(until: self.start + .seconds(1))
        #expect(paused.take(now: self.start) == .seconds(5))
    }

    /// Whatever the arrivals, the calls let through in any span of t seconds number at most rate×t+burst.
    @Test(arguments: [(20.0, 5), (1.0, 1), (3.5, 2), (100.0, 10)])
    func neverExceedsRateTimesTimePlusBurst(rate: Double, burst: Int) {
        var generator = SplitMix64(seed: UInt64(rate * 1_000) + UInt64(burst))
        var bucket = TokenBucket(rate: rate, burst: burst)
        var now = self.start
        var sent: [ContinuousClock.Instant] = []
        for _ in 0..<400 {
            // Arrivals in clumps and gaps: often together, sometimes after a pause.
            let gap = generator.next() % 4 == 0 ? Duration.milliseconds(Int64(generator.next() % 3_000)) : .zero
            now = now + gap
            sent.append(now + bucket.take(now: now))
        }
        sent.sort()
        for first in sent.indices {
            for last in first..<sent.count {
                let span = sent[first].duration(to: sent[last])
                let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
                #expect(Double(last - first + 1) <= rate * seconds + Double(burst) + 1e-9)
            }
        }
    }

    /// A rate limit must have a positive rate and a burst of at least one.
    @Test func rateLimitIsChecked() throws {
        #expect(throws: ProviderConfigurationError.self) { try RateLimit(perSecond: 0, burst: 1) }
        #expect(throws: ProviderConfigurationError.self) { try RateLimit(perSecond: 5, burst: 0) }
        #expect(throws: ProviderConfigurationError.self) { try RateLimit(perSecond: .infinity, burst: 1) }
        #expect(try RateLimit(perSecond: 5, burst: 2).burst == 2)
        // Stripe's default stays under its 25 calls a second per endpoint, burst included.
        #expect(RateLimit.stripe.perSecond + Double(RateLimit.stripe.burst) <= 25)
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
