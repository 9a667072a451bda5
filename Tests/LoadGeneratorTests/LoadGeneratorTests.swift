import Foundation
import Testing

@testable import LoadGenerator

@Suite("Load generator: statistics, parsing, reports")
struct LoadGeneratorTests {
    /// Percentiles come out of the histogram in milliseconds, within its 3 significant digits.
    @Test func latencyPercentiles() {
        let histogram = LatencyHistogram()
        for milliseconds in 1...1000 { histogram.record(.milliseconds(milliseconds)) }
        histogram.record(.milliseconds(-5))  // clock noise counts as zero
        let summary = histogram.summary
        #expect(summary.count == 1001)
        #expect(abs(summary.p50 - 500) <= 0.5)
        #expect(abs(summary.p99 - 990) <= 1)
        #expect(abs(summary.p999 - 999) <= 1)
        #expect(abs(summary.max - 1000) <= 1)
        #expect(summary.min == 0)
        #expect(LatencyHistogram().summary == LatencySummary(count: 0, min: 0, p50: 0, p99: 0, p999: 0, max: 0))
    }

    /// RSS and CPU ticks are read from /proc text, including a command name holding ") (".
    @Test func procParsing() throws {
        let status = "Name:\tpaynotify\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
        #expect(ProcessSample.residentKilobytes(status: status) == 12345)
        #expect(ProcessSample.residentKilobytes(status: "Name:\tx\n") == nil)
        let stat = "4242 (pay notify) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1234 5678"
        #expect(ProcessSample.cpuTicks(stat: stat) == 325)
        #expect(ProcessSample.cpuTicks(stat: "garbage") == nil)
        let netstat = """
            TcpExt: SyncookiesSent ListenOverflows ListenDrops
            TcpExt: 92426 609947 609950
            IpExt: InNoRoutes
            IpExt: 0
            """
        #expect(ListenOverflows.count(netstat: netstat) == 609947)
        #expect(ListenOverflows.count(netstat: "TcpExt: ListenOverflows\n") == nil)
        #expect(ListenOverflows.read() != nil)
        let own = try ProcessSample.read(pid: getpid())
        #expect(own.residentKilobytes > 0 && own.cpuSeconds >= 0)
    }

    /// The JSON line is valid JSON with the benchmark first and the fields in order; the table aligns.
    @Test func reportFormats() throws {
        var report = Report(benchmark: "deliver")
        report.add("sent", .integer(7500))
        report.add("rate", .number(499.9876))
        report.add("note", .text(#"a "quoted" / text"#))
        report.add("latency_ms", .latency(LatencySummary(count: 3, min: 1, p50: 1.5, p99: 2.25, p999: 3, max: 4.0)))
        let line = report.jsonLine
        #expect(line.hasPrefix(#"{"benchmark":"deliver","sent":7500,"rate":499.988,"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["note"] as? String == #"a "quoted" / text"#)
        #expect((object["latency_ms"] as? [String: Any])?["p99"] as? Double == 2.25)
        #expect((object["latency_ms"] as? [String: Any])?["min"] as? Double == 1)
        let table = report.table.split(separator: "\n")
        #expect(table.first == "deliver")
        #expect(table.contains("latency_ms p99    2.25 ms"))
        #expect(table.contains("latency_ms min    1 ms"))
        #expect(table.contains("sent              7500"))
        #expect(Report.format(0.0004) == "0" && Report.format(12.5) == "12.5" && Report.format(40) == "40")
    }

    /// The webhook index a stream event carries in its stage is found in the server's JSON text.
    @Test func webhookIndexFromEventData() {
        #expect(Benchmarks.webhookIndex(in: #"{"stage": "lg-4711", "percent": 11, "order_id": "ord_x"}"#) == 4711)
        #expect(Benchmarks.webhookIndex(in: #"{"stage":"lg-0"}"#) == 0)
        #expect(Benchmarks.webhookIndex(in: #"{"stage": "paying"}"#) == nil)
    }
}
