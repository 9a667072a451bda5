import Histogram
import Synchronization

/// Latencies in microseconds, recorded from many tasks into one HdrHistogram (3 significant
/// digits, up to an hour), and summarised in milliseconds.
public final class LatencyHistogram: Sendable {
    private let histogram = Mutex(
        Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    )

    public init() {}

    /// Records one latency; negative durations (clock noise) count as zero.
    public func record(_ duration: Duration) {
        let microseconds = max(
            0,
            duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        )
        self.histogram.withLock { _ = $0.record(UInt64(microseconds)) }
    }

    public var summary: LatencySummary {
        self.histogram.withLock { LatencySummary($0) }
    }
}

/// Percentiles of a latency distribution, in milliseconds.
public struct LatencySummary: Sendable, Hashable, Codable {
    public let count: UInt64
    public let min: Double
    public let p50: Double
    public let p99: Double
    public let p999: Double
    public let max: Double

    public init(count: UInt64, min: Double, p50: Double, p99: Double, p999: Double, max: Double) {
        self.count = count
        self.min = min
        self.p50 = p50
        self.p99 = p99
        self.p999 = p999
        self.max = max
    }

    init(_ histogram: Histogram<UInt64>) {
        func milliseconds(_ microseconds: UInt64) -> Double { Double(microseconds) / 1000 }
        let empty = histogram.totalCount == 0
        self.init(
            count: histogram.totalCount,
            min: empty ? 0 : milliseconds(histogram.min),
            p50: empty ? 0 : milliseconds(histogram.valueAtPercentile(50)),
            p99: empty ? 0 : milliseconds(histogram.valueAtPercentile(99)),
            p999: empty ? 0 : milliseconds(histogram.valueAtPercentile(99.9)),
            max: empty ? 0 : milliseconds(histogram.max)
        )
    }
}
