import Foundation
import Hummingbird
import Logging
import PaymentProviders
import Payments
import ServiceLifecycle
import Synchronization
import _CryptoExtras

/// Our webhook endpoint, standing in for the service: keeps every callback, and answers each as
/// the service does once it is recorded (Alipay: `success`), or with the statuses given first.
final class CallbackReceiver: Sendable {
    struct Received: Sendable {
        let provider: String
        let request: WebhookRequest
        let at: Date
    }

    private let state: Mutex<(received: [Received], failures: Int)>

    /// - Parameter failures: how many callbacks to answer `500` before acknowledging.
    init(failures: Int = 0) {
        self.state = Mutex(([], failures))
    }

    var received: [Received] { self.state.withLock { $0.received } }

    /// The callbacks received, once there are at least `count` or `timeout` passed.
    func waitFor(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while self.received.count < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return self.received
    }

    /// Serves on a free loopback port while `body` runs.
    func serve<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/webhooks/{provider}") { request, context in
            var request = request
            let provider = try context.parameters.require("provider")
            let bytes = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let fail = self.state.withLock { state in
                state.received.append(
                    Received(
                        provider: provider,
                        request: WebhookRequest(headers: headers, body: Array(bytes.readableBytesView)),
                        at: Date()
                    )
                )
                guard state.failures > 0 else { return false }
                state.failures -= 1
                return true
            }
            if fail { return Response(status: .internalServerError) }
            return provider == "alipay"
                ? Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "success")))
                : Response(status: .noContent)
        }
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "callback-receiver")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                listening.yield(channel.localAddress?.port ?? 0)
                listening.finish()
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { listening.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            let result: Result<T, any Error>
            do {
                guard port != 0 else { throw Unexpected("the callback receiver did not start") }
                result = .success(try await body(port))
            } catch {
                result = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}

/// The service's own adapter for `provider`, with the keys the emulator signs with.
func adapter(for provider: Provider) -> any WebhookAdapter {
    switch provider {
    case .wechatpay:
        WeChatPayAdapter(
            platformKeys: [Keys.platformSerial: Keys.platform.publicKey],
            apiV3Key: Array(Keys.apiV3Key.utf8),
            tolerance: 300
        )
    case .alipay: AlipayAdapter(publicKeys: [Keys.alipay.publicKey], appID: Keys.alipayAppID, tolerance: 300)
    case .stripe, .sandbox: StripeAdapter(secrets: [Keys.stripeWebhookSecret], tolerance: 300)
    }
}
