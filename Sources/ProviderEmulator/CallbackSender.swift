import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PaymentProviders
import Payments
import ServiceLifecycle

/// Delivers provider callbacks to our webhook endpoint, `<webhook base URL>/v1/webhooks/{provider}`,
/// each in a task of its own: after its delay, one attempt and then one more after each of the
/// configured pauses, until our server acknowledges it as the provider requires (Alipay: the body
/// `success`; the others: any 2xx). The real providers go on for a day or three; a few quick tries
/// are enough to exercise our side. Each attempt is signed afresh (its timestamp is the attempt's),
/// with the same event id, as Stripe re-signs its retries.
///
/// A Service: its `run` is its whole life. At graceful shutdown it takes no more callbacks and
/// abandons those waiting or in flight.
final class CallbackSender: Service {
    /// One callback to deliver.
    struct Callback: Sendable {
        let provider: Provider
        let orderID: String
        /// Builds the request for an attempt at the given time.
        let request: @Sendable (Date) throws -> WebhookRequest
        /// How long to wait before the first attempt.
        let delay: Duration
    }

    private let baseURL: String
    private let retryDelays: [Duration]
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let callbacks: AsyncStream<Callback>
    private let continuation: AsyncStream<Callback>.Continuation

    init(baseURL: String, retryDelays: [Duration], logger: Logger, now: @escaping @Sendable () -> Date) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.retryDelays = retryDelays
        self.logger = logger
        self.now = now
        (self.callbacks, self.continuation) = AsyncStream.makeStream(of: Callback.self)
    }

    /// Queues a callback; it is sent while the service runs.
    func send(_ callback: Callback) {
        self.continuation.yield(callback)
    }

    func run() async {
        // A refused connection fails the attempt at once, as our server being down should: the
        // client's own reconnecting would spend the attempt's whole timeout on it.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        await withDiscardingTaskGroup { group in
            for await callback in self.callbacks.cancelOnGracefulShutdown() {
                group.addTask { await self.deliver(callback, client: client) }
            }
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    private func deliver(_ callback: Callback, client: HTTPClient) async {
        let url = "\(self.baseURL)/v1/webhooks/\(callback.provider.rawValue)"
        do {
            try await Task.sleep(for: callback.delay)
            for (attempt, pause) in ([Duration.zero] + self.retryDelays).enumerated() {
                try await Task.sleep(for: pause)
                let outcome = await self.attempt(callback, url: url, client: client)
                self.logger.info(
                    "callback attempt",
                    metadata: [
                        "provider": "\(callback.provider.rawValue)", "order": "\(callback.orderID)",
                        "attempt": "\(attempt + 1)",
                        "outcome": "\(outcome)",
                    ]
                )
                if outcome == "acknowledged" { return }
            }
            self.logger.warning(
                "callback abandoned",
                metadata: ["provider": "\(callback.provider.rawValue)", "order": "\(callback.orderID)"]
            )
        } catch {
            // Cancelled: the emulator is shutting down.
        }
    }

    /// One attempt: "acknowledged", or what went wrong.
    private func attempt(_ callback: Callback, url: String, client: HTTPClient) async -> String {
        do {
            let webhook = try callback.request(self.now())
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            for (name, value) in webhook.headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: webhook.body))
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 64 * 1024)
            let acknowledged =
                callback.provider == .alipay
                ? String(buffer: body) == "success" : (200..<300).contains(response.status.code)
            return acknowledged ? "acknowledged" : "answered \(response.status.code)"
        } catch {
            return "failed: \(error)"
        }
    }
}
