import Foundation
import HTTPTypes
import Hummingbird
public import NIOHTTP1
public import PayNotifyClient
import ServiceLifecycle

/// A merchant's backend on a loopback port: keeps every request, and answers each path with the
/// statuses it was given, in order (the last one repeats), after `delay`.
public actor WebhookReceiver {
    public struct Received: Sendable {
        public let path: String
        public let headers: [String: String]
        public let body: String
        public let status: Int

        public init(path: String, headers: [String: String], body: String, status: Int) {
            self.path = path
            self.headers = headers
            self.body = body
            self.status = status
        }
    }

    private var answers: [String: [Int]]
    /// Paths whose requests are answered only once released (at the end of ``serve(port:_:)``).
    let hangingPaths: Set<String>
    let delay: Duration
    private var released = false
    private var hanging: [CheckedContinuation<Void, Never>] = []
    public private(set) var received: [Received] = []

    public init(answers: [String: [Int]], hangingPaths: Set<String> = [], delay: Duration = .zero) {
        self.answers = answers
        self.hangingPaths = hangingPaths
        self.delay = delay
    }

    /// The `webhook-id`s answered with a 2xx, once each.
    public var acknowledgedIDs: [String] {
        self.received.filter { (200..<300).contains($0.status) }.compactMap { $0.headers["webhook-id"] }
    }

    private func answer(path: String, headers: HTTPFields, body: String) -> Int {
        var statuses = self.answers[path] ?? [200]
        let status = statuses[0]
        if statuses.count > 1 { statuses.removeFirst() }
        self.answers[path] = statuses
        let names = ["content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"]
        let kept = Dictionary(
            uniqueKeysWithValues: names.compactMap { name in
                headers[HTTPField.Name(name)!].map { (name, $0) }
            }
        )
        self.received.append(Received(path: path, headers: kept, body: body, status: status))
        return status
    }

    private func untilReleased() async {
        guard !self.released else { return }
        await withCheckedContinuation { self.hanging.append($0) }
    }

    private func release() {
        self.released = true
        for waiter in self.hanging { waiter.resume() }
        self.hanging = []
    }

    /// Serves on a loopback port (`0`: any free one) while `body` runs, and gives `body` the port.
    public func serve<T: Sendable>(port: Int = 0, _ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/{path}") { request, context in
            let path = try context.parameters.require("path")
            let text = String(buffer: try await request.body.collect(upTo: 1 << 20))
            // Kept when it arrives, as a backend that acts at once would: a sender that goes away
            // during the delay has still been heard.
            let status = await self.answer(path: path, headers: request.headers, body: text)
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            if self.hangingPaths.contains(path) { await self.untilReleased() }
            return Response(status: .init(code: status))
        }
        let (ports, bound) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                bound.yield(channel.localAddress?.port ?? 0)
                bound.finish()
            }
        )
        let services = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            let boundPort = await iterator.next() ?? 0
            let result: Result<T, any Error>
            if boundPort == 0 {
                result = .failure(TestSetupError("the webhook receiver did not start on port \(port)"))
            } else {
                do { result = .success(try await body(boundPort)) } catch { result = .failure(error) }
            }
            self.release()
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }
}

extension LoopbackHTTPClient {
    /// A merchant API call whose answer must be a 2xx JSON object.
    public func merchantJSON(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> [String: Any] {
        var headers = [("Authorization", "Bearer \(TestSecrets.apiKey)")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let response = try await self.send(method: method, path: path, headers: headers, body: Array((body ?? "").utf8))
        guard (200..<300).contains(response.status),
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        else { throw UnexpectedAnswer(description: "\(method) \(path): \(response.status) \(response.text)") }
        return json
    }

    /// Registers a webhook endpoint and returns its id and secret.
    public func createEndpoint(url: String) async throws -> (id: String, secret: String) {
        let json = try await self.merchantJSON(.POST, "/v1/webhook-endpoints", body: #"{"url":"\#(url)"}"#)
        guard let id = json["id"] as? String, let secret = json["secret"] as? String else {
            throw UnexpectedAnswer(description: "endpoint create answered without id or secret: \(json)")
        }
        return (id, secret)
    }
}
