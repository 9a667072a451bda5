import Foundation

/// When a message's attempts happen: the first `delays[0]` after it is written (immediately),
/// and each next one `delays[n]` after the n-th failed. A message is exhausted when its last
/// attempt fails.
///
/// The default is Svix's (the reference producer's) schedule of 8 attempts: immediately, then
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after each failure, about 27.5 hours in all; tests
/// give a compressed one.
public struct RetrySchedule: Sendable, Hashable {
    public let delays: [Duration]
    /// Each delay is moved by up to this fraction of itself either way, so that the retries of
    /// many messages failed at once do not arrive together.
    public let jitter: Double

    public init(delays: [Duration], jitter: Double = 0.1) {
        self.delays = delays
        self.jitter = jitter
    }

    public static let standard = RetrySchedule(
        delays: [
            .zero, .seconds(5), .seconds(300), .seconds(1_800), .seconds(7_200), .seconds(18_000),
            .seconds(36_000), .seconds(36_000),
        ]
    )

    /// The delay before the next attempt after `attempts` attempts have failed, or `nil` when the
    /// message is exhausted. A `Retry-After` the endpoint sent is honoured when it asks for longer.
    ///
    /// - Parameter random: a value in 0..<1 (given, so tests are exact).
    public func delay(afterFailedAttempts attempts: Int, retryAfter: Duration? = nil, random: Double) -> Duration? {
        guard attempts >= 1, attempts < self.delays.count else { return nil }
        let base = self.delays[attempts]
        let jittered = base * (1 + self.jitter * (2 * random - 1))
        return max(jittered, retryAfter ?? .zero)
    }

    /// Reads a schedule written as durations separated by commas (`0s,5s,5m,30m,2h,5h,10h,10h`);
    /// `nil` when any part is not a number followed by `ms`, `s`, `m` or `h`, or the list is empty.
    public init?(parsing text: String) {
        var delays: [Duration] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600)]
            guard let unit = units.first(where: { trimmed.hasSuffix($0.suffix) }),
                let value = Double(trimmed.dropLast(unit.suffix.count)), value >= 0, value.isFinite
            else { return nil }
            delays.append(.milliseconds(Int64((value * unit.seconds * 1_000).rounded())))
        }
        guard !delays.isEmpty else { return nil }
        self.init(delays: delays)
    }
}
