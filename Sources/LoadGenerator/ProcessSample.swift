import Foundation

/// A process's resident memory and CPU time, read from `/proc/<pid>/status` and `/proc/<pid>/stat`.
public struct ProcessSample: Sendable, Hashable {
    public let residentKilobytes: Int
    /// User plus system CPU time.
    public let cpuSeconds: Double

    /// Samples `pid` now.
    public static func read(pid: Int32) throws -> ProcessSample {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let rss = Self.residentKilobytes(status: status), let cpu = Self.cpuTicks(stat: stat) else {
            throw LoadError("cannot read /proc/\(pid)")
        }
        return ProcessSample(residentKilobytes: rss, cpuSeconds: Double(cpu) / Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// `VmRSS:  12345 kB` from `/proc/<pid>/status`.
    static func residentKilobytes(status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }

    /// utime + stime, in clock ticks, from `/proc/<pid>/stat`. The command name (field 2) is in
    /// parentheses and may itself hold spaces and parentheses, so fields are counted after the last `)`.
    static func cpuTicks(stat: String) -> Int? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // After the name: state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }
}

/// The kernel's count of connections dropped because a listening socket's accept queue was
/// full (`TcpExt: ListenOverflows` in `/proc/net/netstat`, for the whole machine): a client whose
/// handshake was dropped retries its SYN after a second, then three, which is what a
/// reconnection storm waits for when the server's backlog is too short.
public enum ListenOverflows {
    /// The count now; `nil` where `/proc/net/netstat` cannot be read.
    public static func read() -> Int? {
        (try? String(contentsOfFile: "/proc/net/netstat", encoding: .utf8)).flatMap(Self.count(netstat:))
    }

    /// What `body` returns, and how many overflows there were while it ran (`nil` when unknown).
    public static func during<T>(_ body: () async -> T) async -> (result: T, overflows: Int?) {
        let before = Self.read()
        let result = await body()
        return (result, Self.read().flatMap { after in before.map { after - $0 } })
    }

    /// The `ListenOverflows` value from the file's two `TcpExt:` lines (names, then values).
    static func count(netstat: String) -> Int? {
        let lines = netstat.split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
        guard lines.count >= 2 else { return nil }
        let names = lines[0].split(separator: " ", omittingEmptySubsequences: true)
        let values = lines[1].split(separator: " ", omittingEmptySubsequences: true)
        guard names.count == values.count, let index = names.firstIndex(of: "ListenOverflows") else { return nil }
        return Int(values[index])
    }
}

/// A load run that could not be set up or measured.
public struct LoadError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
