import Foundation

/// One benchmark's result: printed as one JSON line (`{"benchmark":…}`, for scripts) and a human
/// table.
public struct Report: Sendable {
    public enum Value: Sendable, Hashable {
        case integer(Int)
        case number(Double)
        case text(String)
        case latency(LatencySummary)
    }

    public let benchmark: String
    public private(set) var fields: [(name: String, value: Value)] = []

    public init(benchmark: String) {
        self.benchmark = benchmark
    }

    public mutating func add(_ name: String, _ value: Value) {
        self.fields.append((name, value))
    }

    /// The JSON line: `benchmark` first, then the fields in the order they were added.
    public var jsonLine: String {
        var parts = [#""benchmark":\#(Self.quoted(self.benchmark))"#]
        for (name, value) in self.fields {
            parts.append("\(Self.quoted(name)):\(Self.json(value))")
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Two aligned columns; a latency becomes one row per percentile.
    public var table: String {
        var rows: [(String, String)] = []
        for (name, value) in self.fields {
            switch value {
            case .latency(let summary):
                for (label, milliseconds) in [
                    ("min", summary.min), ("p50", summary.p50), ("p99", summary.p99), ("p99.9", summary.p999),
                    ("max", summary.max),
                ] {
                    rows.append(("\(name) \(label)", Self.format(milliseconds) + " ms"))
                }
            default:
                rows.append((name, Self.text(value)))
            }
        }
        let width = rows.map(\.0.count).max() ?? 0
        let title = "\(self.benchmark)\n" + String(repeating: "-", count: max(self.benchmark.count, width + 14))
        return ([title] + rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 })
            .joined(separator: "\n")
    }

    private static func json(_ value: Value) -> String {
        switch value {
        case .integer(let value): String(value)
        case .number(let value): value.isFinite ? Self.format(value) : "null"
        case .text(let value): Self.quoted(value)
        case .latency(let summary):
            #"{"count":\#(summary.count),"min":\#(Self.format(summary.min)),"p50":\#(Self.format(summary.p50)),"p99":\#(Self.format(summary.p99)),"p999":\#(Self.format(summary.p999)),"max":\#(Self.format(summary.max))}"#
        }
    }

    private static func text(_ value: Value) -> String {
        switch value {
        case .integer(let value): String(value)
        case .number(let value): Self.format(value)
        case .text(let value): value
        case .latency(let summary): "p50 \(Self.format(summary.p50)) ms"
        }
    }

    /// Three decimals at most, no trailing zeros: `12.5`, `0.003`, `40`.
    static func format(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
