import ArgumentParser
import Foundation
import LoadGenerator
import NIOCore
import NIOPosix

/// `paynotify-loadgen`: load against a running PayNotify server, through its public HTTP API only.
/// Each benchmark prints one JSON line (`{"benchmark":…}`) and a human table.
@main
struct LoadGeneratorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paynotify-loadgen",
        abstract: "Load a running PayNotify server and measure it.",
        subcommands: [Streams.self, Deliver.self, Throughput.self, Fanout.self, Reconnect.self]
    )
}

/// Where the server is and how to talk to it.
struct TargetOptions: ParsableArguments {
    @Option(help: "The server's base URL.")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: "A merchant API key the server accepts.")
    var apiKey: String

    @Option(help: "The server's sandbox webhook secret.")
    var sandboxSecret: String

    @Option(help: "The server's admin token (fanout).")
    var adminToken: String?

    @Option(help: "The server's pid, for its memory and CPU time.")
    var serverPID: Int32?

    @Option(help: "Event loop threads of the load generator.")
    var threads: Int = 2

    func run(_ benchmark: (Target) async throws -> Report) async throws {
        guard let components = URLComponents(string: self.url), let host = components.host else {
            throw ValidationError("--url must look like http://127.0.0.1:8080")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        let target = try Target(
            host: host,
            port: components.port ?? 80,
            apiKey: self.apiKey,
            sandboxSecret: self.sandboxSecret,
            adminToken: self.adminToken,
            serverPID: self.serverPID,
            group: group
        )
        let report = try await benchmark(target)
        print(report.jsonLine)
        print(report.table)
        try await group.shutdownGracefully()
    }
}

struct Streams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open N streams: open rate, server memory per stream.")
    @OptionGroup var target: TargetOptions
    @Option var count: Int = 1000
    @Option var concurrency: Int = 200

    func run() async throws {
        try await self.target.run { try await Benchmarks.streams($0, count: self.count, concurrency: self.concurrency) }
    }
}

struct Deliver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhooks at a fixed rate to open streams: latency, loss, CPU."
    )
    @OptionGroup var target: TargetOptions
    @Option var streams: Int = 1000
    @Option var rate: Int = 500
    @Option var seconds: Int = 10
    @Option(help: "Keep-alive connections the webhooks are sent on.") var connections: Int = 64

    func run() async throws {
        try await self.target.run {
            try await Benchmarks.deliver(
                $0,
                streams: self.streams,
                rate: self.rate,
                seconds: self.seconds,
                connections: self.connections
            )
        }
    }
}

struct Throughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Closed-loop webhooks: accepted per second.")
    @OptionGroup var target: TargetOptions
    @Option var concurrency: Int = 32
    @Option var seconds: Int = 10

    func run() async throws {
        try await self.target.run {
            try await Benchmarks.throughput($0, concurrency: self.concurrency, seconds: self.seconds)
        }
    }
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One alert to N ops streams: time to the last.")
    @OptionGroup var target: TargetOptions
    @Option var streams: Int = 1000

    func run() async throws {
        try await self.target.run { try await Benchmarks.fanout($0, streams: self.streams) }
    }
}

struct Reconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "N streams drop and reconnect at once while events flow.")
    @OptionGroup var target: TargetOptions
    @Option var streams: Int = 1000
    @Option var rate: Int = 200

    func run() async throws {
        try await self.target.run { try await Benchmarks.reconnect($0, streams: self.streams, rate: self.rate) }
    }
}
