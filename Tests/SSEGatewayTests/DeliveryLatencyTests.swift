import SSEGateway
import Testing

private func isClose(_ value: Double?, _ expected: Double) -> Bool {
    value.map { abs($0 - expected) < 1e-9 } ?? false
}

@Suite("DeliveryLatency")
struct DeliveryLatencyTests {
    /// Percentiles are read from the interval's samples (nearest rank), and draining starts afresh.
    @Test func percentilesPerInterval() {
        let latency = DeliveryLatency()
        for milliseconds in 1...100 { latency.record(Double(milliseconds) / 1000) }
        let summary = latency.drain()
        #expect(summary.count == 100)
        #expect(isClose(summary.p50, 50))
        #expect(isClose(summary.p99, 99))
        #expect(isClose(summary.max, 100))
        let empty = latency.drain()
        #expect(empty.count == 0 && empty.p50 == nil && empty.p99 == nil && empty.max == nil)
    }

    /// Past its capacity the recorder still counts every delivery but keeps a bounded sample.
    @Test func boundedSample() {
        let latency = DeliveryLatency(capacity: 10)
        for _ in 0..<1000 { latency.record(0.005) }
        let summary = latency.drain()
        #expect(summary.count == 1000)
        #expect(isClose(summary.p99, 5))
    }
}
