import Synchronization

/// Commit-to-delivery latencies of live events, summarised per interval for the ops stream.
public final class DeliveryLatency: Sendable {
    /// The latencies of one interval, in milliseconds.
    public struct Summary: Sendable, Hashable {
        public let count: Int
        public let p50: Double?
        public let p99: Double?
        public let max: Double?
    }

    private struct Samples {
        var values: [Double] = []
        var count = 0
    }

    /// Samples kept per interval; beyond it every further sample replaces a random one, so the
    /// percentiles stay fair and memory stays bounded.
    private let capacity: Int
    private let samples = Mutex(Samples())
    private let observer: @Sendable (Double) -> Void

    /// - Parameter observer: also told every delivery's latency in seconds (a metrics histogram).
    public init(capacity: Int = 10_000, observer: @escaping @Sendable (Double) -> Void = { _ in }) {
        self.capacity = capacity
        self.observer = observer
    }

    /// Records one delivery, `seconds` after its event was written.
    public func record(_ seconds: Double) {
        self.observer(seconds)
        let milliseconds = Swift.max(0, seconds * 1000)
        self.samples.withLock { samples in
            samples.count += 1
            if samples.values.count < self.capacity {
                samples.values.append(milliseconds)
            } else {
                let slot = Int.random(in: 0..<samples.count)
                if slot < self.capacity { samples.values[slot] = milliseconds }
            }
        }
    }

    /// The interval's summary; starts the next interval.
    public func drain() -> Summary {
        let taken = self.samples.withLock { samples in
            defer { samples = Samples() }
            return samples
        }
        let sorted = taken.values.sorted()
        func percentile(_ p: Double) -> Double? {
            sorted.isEmpty ? nil : sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        return Summary(count: taken.count, p50: percentile(0.5), p99: percentile(0.99), max: sorted.last)
    }
}
