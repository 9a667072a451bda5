import Foundation
import Logging
import NIOHTTP1
import PayNotify
import PayNotifyClient
import PaymentProviders
import Payments
import Postgres
import ProviderEmulator
import TestSupport
import Testing
import _CryptoExtras

/// The service and the provider emulator, each knowing where the other is.
private func withReconciliation(
    overrides: [String: String] = [:],
    _ body: @Sendable (LoopbackHTTPClient, LoopbackHTTPClient, TestDatabase) async throws -> Void
) async throws {
    let keys = EmulatedProviderKeys.shared
    let servicePort = try TestEnvironment.freePort()
    try await EmulatedProviders.serve(configuration: keys.emulatorConfiguration(servicePort: servicePort)) { port in
        var settings = keys.serviceSettings(emulatorPort: port)
        // Compressed: asked a second after creation, then every second; WeChat Pay accepts a
        // close a second after creation; closing gives up after 3 s.
        settings.merge([
            "PAYNOTIFY_RECONCILE_AFTER": "1s", "PAYNOTIFY_RECONCILE_EVERY": "1s",
            "PAYNOTIFY_WECHATPAY_CLOSE_AFTER": "1s", "PAYNOTIFY_CLOSE_GIVE_UP": "3s",
        ]) { $1 }
        settings["PAYNOTIFY_PORT"] = String(servicePort)
        settings.merge(overrides) { $1 }
        try await withLiveApp(overrides: settings) { service, database in
            try await body(service, LoopbackHTTPClient(host: "127.0.0.1", port: port), database)
        }
    }
}

extension LoopbackHTTPClient {
    /// A control call to the emulator; its answer as JSON.
    @discardableResult
    fileprivate func control(_ method: HTTPMethod, _ path: String, _ body: String = "") async throws -> [String: Any] {
        let response = try await self.send(
            method: method,
            path: path,
            headers: [("Content-Type", "application/json")],
            body: Array(body.utf8)
        )
        guard (200..<300).contains(response.status) else {
            throw UnexpectedAnswer(description: "emulator \(method) \(path): \(response.status) \(response.text)")
        }
        return (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    /// Creates an order through the merchant API and its trade at the emulator; returns the order.
    fileprivate func order(
        _ provider: String,
        at emulator: LoopbackHTTPClient,
        reference: Bool = true
    ) async throws -> ReconciledOrder {
        var paymentID: String?
        // The merchant's own id for the order: what a Stripe PaymentIntent's metadata names.
        let merchantOrderID = "m_" + UUID().uuidString.lowercased()
        let currency = provider == "stripe" ? "USD" : "CNY"
        if provider == "stripe" {
            // A Stripe trade is made first: its PaymentIntent id goes into the order.
            let trade = try await emulator.control(
                .POST,
                "/control/trades",
                #"{"provider":"stripe","order_id":"\#(merchantOrderID)","amount":1999,"currency":"USD"}"#
            )
            paymentID = trade["payment_id"] as? String
        }
        var fields = [#""amount":1999"#, #""currency":"\#(currency)""#, #""provider":"\#(provider)""#]
        if reference, let paymentID { fields.append(#""provider_reference":"\#(paymentID)""#) }
        fields.append(#""merchant_order_id":"\#(merchantOrderID)""#)
        let json = try await self.merchantJSON(.POST, "/v1/orders", body: "{" + fields.joined(separator: ",") + "}")
        guard let orderID = json["id"] as? String, let token = json["stream_token"] as? String else {
            throw UnexpectedAnswer(description: "create answered \(json)")
        }
        if provider != "stripe" {
            try await emulator.control(
                .POST,
                "/control/trades",
                #"{"provider":"\#(provider)","order_id":"\#(orderID)","amount":1999,"currency":"\#(currency)"}"#
            )
        }
        return ReconciledOrder(id: orderID, merchantOrderID: merchantOrderID, token: token)
    }

    /// The order's status, asked until it is `status` (or `timeout` passes); the last one seen.
    fileprivate func status(of order: String, becomes status: String, within timeout: Duration = .seconds(45))
        async throws -> String
    {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await self.merchantJSON(.GET, "/v1/orders/\(order)")["status"] as? String ?? ""
            if last == status { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return last
    }
}

/// An order made for these tests: our id, the merchant's, and the stream token.
private struct ReconciledOrder {
    let id: String
    let merchantOrderID: String
    let token: String

    var streamPath: String { "/v1/orders/\(self.id)/events?token=\(self.token)" }
}

/// How many of the database's alerts are of `kind` (for `order`, when given).
private func alerts(_ kind: String, order: String? = nil, in database: TestDatabase) async throws -> Int {
    try await database.withConnection { connection in
        try connection.query(
            "SELECT count(*) FROM alerts WHERE kind = $1 AND ($2::text IS NULL OR order_id = $2)",
            [kind, order]
        ).first!.decode(Int.self, at: 0)
    }
}

/// Moves an order's deadline (and creation) into the past, as if it had waited that long.
private func expire(_ order: String, in database: TestDatabase) async throws {
    try await database.withConnection { connection in
        try connection.execute(
            """
            UPDATE orders SET created_at = created_at - interval '1 hour', updated_at = updated_at - interval '1 hour',
                expires_at = now() - interval '1 second', reconcile_at = now()
            WHERE id = $1
            """,
            [order]
        )
    }
}

@Suite("Reconciliation against the provider emulator", .serialized)
struct ReconciliationTests {
    /// A WeChat Pay payment whose callback was lost is found by asking: the order's stream ends
    /// `succeeded`, the merchant's endpoint is told, the ops stream raises `callback_missing`; the
    /// callback that comes late is a harmless repeat.
    @Test func aLostCallbackIsFoundByAsking() async throws {
        let receiver = WebhookReceiver(answers: [:])
        try await receiver.serve { receiverPort in
            try await withReconciliation(overrides: [
                "PAYNOTIFY_ALLOW_HTTP_WEBHOOKS": "true", "PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32",
            ]) { service, emulator, database in
                _ = try await service.createEndpoint(url: "http://127.0.0.1:\(receiverPort)/hooks")
                let order = try await service.order("wechatpay", at: emulator)
                try await service.stream(path: order.streamPath) { stream in
                    try await service.stream(path: "/v1/ops/events?token=\(TestSecrets.adminToken)") { ops in
                        try await emulator.control(
                            .POST,
                            "/control/trades/wechatpay/\(order.id)/pay",
                            #"{"callback":"drop"}"#
                        )
                        var names: [String] = []
                        while let event = try await stream.nextEvent() {
                            names.append(event.name)
                            if event.name == "finish" {
                                #expect(event.data.contains("succeeded"))
                                break
                            }
                        }
                        #expect(names.filter { $0 == "finish" }.count == 1)
                        var alert: String?
                        while alert == nil, let event = try await ops.nextEvent() {
                            if event.name == "alert", event.data.contains("callback_missing") { alert = event.data }
                        }
                        #expect(alert?.contains(order.id) == true)
                    }
                }
                // The provider's late callback changes nothing: acknowledged, no second finish.
                var credentials = DeliverySimulator.Credentials()
                credentials.wechatPaySerial = EmulatedProviderKeys.platformSerial
                credentials.wechatPayPrivateKey = EmulatedProviderKeys.shared.wechatPlatform
                credentials.wechatPayAPIv3Key = EmulatedProviderKeys.apiV3Key
                let late = try DeliverySimulator(credentials: credentials).delivery(
                    provider: .wechatpay,
                    orderID: order.id,
                    outcome: .succeeded,
                    paid: Money(amount: 1999, currency: "CNY"),
                    now: Date()
                )
                let answer = try await service.send(
                    method: .POST,
                    path: "/v1/webhooks/wechatpay",
                    headers: late.headers.map { ($0.key, $0.value) },
                    body: late.body
                )
                #expect((200..<300).contains(answer.status))
                let finishes = try await database.withConnection { connection in
                    try connection.query(
                        "SELECT count(*) FROM order_events WHERE order_id = $1 AND event = 'finish'",
                        [order.id]
                    ).first!.decode(Int.self, at: 0)
                }
                #expect(finishes == 1)
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline,
                    await !receiver.received.contains(where: { $0.body.contains("order.succeeded") })
                {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(
                    await receiver.received.contains {
                        $0.body.contains("order.succeeded") && $0.body.contains(order.id)
                    }
                )
            }
        }
    }

    /// An unpaid order past its deadline is expired only once its payment is closed at the
    /// provider: the emulator's trade is closed, after a query.
    @Test func anUnpaidOrderExpiresAfterAConfirmedClose() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("wechatpay", at: emulator)
            try await expire(order.id, in: database)
            #expect(try await service.status(of: order.id, becomes: "expired") == "expired")
            let trade = try await emulator.control(.GET, "/control/trades/wechatpay/\(order.id)")
            #expect(trade["state"] as? String == "closed")
            #expect(try await alerts("close_failed", order: order.id, in: database) == 0)
        }
    }

    /// A close that finds the order paid (its callback lost) ends it `succeeded`, never `expired`.
    @Test func closingAPaidOrderEndsSucceeded() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("alipay", at: emulator)
            try await emulator.control(.POST, "/control/trades/alipay/\(order.id)/scan")
            try await emulator.control(.POST, "/control/trades/alipay/\(order.id)/pay", #"{"callback":"drop"}"#)
            try await expire(order.id, in: database)
            #expect(try await service.status(of: order.id, becomes: "succeeded") == "succeeded")
            #expect(try await alerts("callback_missing", order: order.id, in: database) == 1)
        }
    }

    /// An Alipay QR code nobody scanned does not exist at Alipay: that is no error; the order
    /// expires once the close says so too.
    @Test func anUnscannedAlipayOrderExpires() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("alipay", at: emulator)
            try await expire(order.id, in: database)
            #expect(try await service.status(of: order.id, becomes: "expired") == "expired")
            #expect(try await alerts("close_failed", order: order.id, in: database) == 0)
        }
    }

    /// An answer whose signature does not verify changes nothing and raises
    /// `unverified_provider_response`; once answers verify again the payment is found.
    @Test func aForgedAnswerChangesNothing() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("wechatpay", at: emulator)
            try await emulator.control(
                .POST,
                "/control/faults",
                #"{"provider":"wechatpay","fault":"bad_signature","count":2}"#
            )
            try await emulator.control(.POST, "/control/trades/wechatpay/\(order.id)/pay", #"{"callback":"drop"}"#)
            #expect(try await service.status(of: order.id, becomes: "succeeded") == "succeeded")
            #expect(try await alerts("unverified_provider_response", order: order.id, in: database) == 2)
        }
    }

    /// A provider that answers nothing but 5xx delays closing, raises `provider_unavailable`, and
    /// after PAYNOTIFY_CLOSE_GIVE_UP the order expires anyway with `close_failed`.
    @Test func anOutageEndsInCloseFailed() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("wechatpay", at: emulator)
            try await emulator.control(
                .POST,
                "/control/faults",
                #"{"provider":"wechatpay","fault":"error_5xx","count":1000}"#
            )
            try await expire(order.id, in: database)
            #expect(try await service.status(of: order.id, becomes: "expired", within: .seconds(60)) == "expired")
            #expect(try await alerts("close_failed", order: order.id, in: database) == 1)
            #expect(try await alerts("provider_unavailable", in: database) >= 1)
        }
    }

    /// A rate-limited answer (429 with Retry-After) delays the query; the payment is then found.
    @Test func aRateLimitIsHonoured() async throws {
        try await withReconciliation { service, emulator, _ in
            let order = try await service.order("wechatpay", at: emulator)
            try await emulator.control(
                .POST,
                "/control/faults",
                #"{"provider":"wechatpay","fault":"rate_limit","count":1,"retry_after_seconds":1}"#
            )
            try await emulator.control(.POST, "/control/trades/wechatpay/\(order.id)/pay", #"{"callback":"drop"}"#)
            #expect(try await service.status(of: order.id, becomes: "succeeded") == "succeeded")
        }
    }

    /// A merchant's cancel of a Stripe order cancels the PaymentIntent first, then answers `200`
    /// with the canceled order; a Stripe order without a PaymentIntent id is canceled at once,
    /// reported as not closed at Stripe.
    @Test func aCancelClosesAtTheProviderFirst() async throws {
        try await withReconciliation { service, emulator, database in
            let order = try await service.order("stripe", at: emulator)
            let canceled = try await service.merchantJSON(.POST, "/v1/orders/\(order.id)/cancel")
            #expect(canceled["status"] as? String == "canceled")
            #expect(try await alerts("close_failed", order: order.id, in: database) == 0)
            let trade = try await emulator.control(.GET, "/control/trades/stripe/\(order.merchantOrderID)")
            #expect(trade["state"] as? String == "closed")

            let unreferenced = try await service.order("stripe", at: emulator, reference: false)
            let answer = try await service.merchantJSON(.POST, "/v1/orders/\(unreferenced.id)/cancel")
            #expect(answer["status"] as? String == "canceled")
            #expect(try await alerts("close_failed", order: unreferenced.id, in: database) == 1)
        }
    }
}
