import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PaymentProviders
import Payments
import Storage

/// The checkout demo's endpoints, for development (`PAYNOTIFY_DEMO=true`, which `make run` sets):
/// create a sandbox order without an API key, and send it a signed sandbox outcome as the provider
/// would. Both go through the same code as the merchant API and the webhook route. With the provider
/// emulator configured (`PAYNOTIFY_DEMO_EMULATOR_URL`), it also creates WeChat Pay orders, which the
/// page pays at the emulator, losing the callback, to show reconciliation finishing the page. When
/// the demo is off they answer `404 demo_disabled`.
struct DemoController {
    let enabled: Bool
    let orders: OrdersController
    let webhooks: WebhookController
    let store: OrderStore
    /// Signs as the sandbox provider would, with the first configured sandbox secret.
    let simulator: DeliverySimulator
    let maximumBodyBytes: Int
    /// The provider emulator's origin, for the page; `nil` when the demo pays in the sandbox only.
    let emulatorURL: String?
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<some RequestContext>) {
        router.post("/demo/orders") { request, context in
            try self.requireEnabled()
            let body: NewDemoOrder = try await RequestJSON.decode(
                request,
                context: context,
                limit: self.maximumBodyBytes
            )
            let provider = body.provider ?? Provider.sandbox.rawValue
            guard
                provider == Provider.sandbox.rawValue
                    || (provider == Provider.wechatpay.rawValue && self.emulatorURL != nil)
            else {
                throw APIError(
                    .unprocessableContent,
                    code: "invalid_field",
                    message: "provider must be sandbox, or wechatpay when the provider emulator is configured"
                )
            }
            return try await self.orders.create(
                .init(
                    amount: body.amount ?? .integer(1999),
                    currency: body.currency ?? "CNY",
                    provider: provider,
                    merchantOrderID: nil,
                    expiresIn: nil,
                    description: "PayNotify checkout demo",
                    metadata: nil,
                    providerReference: nil
                ),
                idempotencyKey: nil
            )
        }
        router.get("/demo/settings") { _, _ in
            try self.requireEnabled()
            return ResponseJSON.response(.ok, ["emulator_url": self.emulatorURL.map(JSONValue.string) ?? .null])
        }
        router.post("/demo/orders/{id}/outcome") { request, context in
            try self.requireEnabled()
            let body: DemoOutcome = try await RequestJSON.decode(
                request,
                context: context,
                limit: self.maximumBodyBytes
            )
            return try await self.sendOutcome(
                body,
                orderID: try context.parameters.require("id"),
                logger: context.logger
            )
        }
    }

    private struct NewDemoOrder: Decodable {
        let amount: JSONValue?
        let currency: String?
        let provider: String?
    }

    private struct DemoOutcome: Decodable {
        let outcome: String?
        let percent: Int?
    }

    private func sendOutcome(_ body: DemoOutcome, orderID: String, logger: Logger) async throws -> Response {
        let names = DeliverySimulator.Outcome.allCases.map(\.rawValue).joined(separator: ", ")
        guard let outcome = body.outcome.flatMap(DeliverySimulator.Outcome.init(rawValue:)) else {
            throw APIError(.unprocessableContent, code: "invalid_field", message: "outcome must be one of \(names)")
        }
        let percent = body.percent ?? 50
        guard (0...100).contains(percent) else {
            throw APIError(.unprocessableContent, code: "invalid_field", message: "percent must be 0 to 100")
        }
        guard let order = try await self.store.order(id: orderID) else { throw OrderStoreError.orderNotFound }
        guard order.provider == .sandbox else {
            throw APIError(
                .conflict,
                code: "not_a_sandbox_order",
                message: "The demo sends sandbox outcomes; this order is paid through \(order.provider.rawValue)."
            )
        }
        let delivery = try self.simulator.delivery(
            provider: .sandbox,
            orderID: order.id,
            outcome: outcome,
            paid: order.price,
            now: self.now(),
            percent: percent
        )
        return try await self.webhooks.handle(delivery, from: .sandbox, logger: logger)
    }

    private func requireEnabled() throws {
        guard self.enabled else {
            throw APIError(
                .notFound,
                code: "demo_disabled",
                message: "The checkout demo is off on this server (PAYNOTIFY_DEMO, development only)."
            )
        }
    }
}
