import Foundation
import Hummingbird
import PaymentProviders
import Payments
import Synchronization

/// The emulator's own API, under `/control/`, for tests, the demo and the benchmark: open trades,
/// act as the buyer (scan, pay) and the merchant's back office (refund), plan faults, read the
/// log of API calls. JSON in and out; refusals are `{"error":{"code","message"}}`.
///
/// - `POST /control/trades` `{"provider","order_id","amount","currency"}` → `201` the trade
///   (`200` for a repeat with the same amount, `409 amount_mismatch` with another);
/// - `GET /control/trades/{provider}/{order_id}`;
/// - `POST /control/trades/{provider}/{order_id}/scan`: the buyer opened the payment (Alipay: the
///   trade now exists, WAIT_BUYER_PAY; WeChat Pay: USERPAYING; Stripe: processing);
/// - `POST …/pay` `{"callback":"send"|"drop"|"delay","delay_ms","amount"}`: paid (`amount` to
///   report another amount than the price), and the provider's callback sent, dropped or delayed;
/// - `POST …/refund` `{"callback",…}`: refunded in full, with the provider's refund callback;
/// - `POST /control/faults` `{"provider","fault","count","retry_after_seconds"}`: the next `count`
///   API calls to the provider meet the fault; `DELETE /control/faults` forgets every plan;
/// - `GET /control/calls?provider=` → `[{"provider","operation","order_id","at_ms","status"}]`;
///   `DELETE /control/calls` empties the log.
struct ControlAPI: Sendable {
    let emulator: Emulator

    func addRoutes(to router: Router<BasicRequestContext>) {
        let control = router.group("control")
        control.post("trades") { request, _ in await Self.answering { try await self.open(request) } }
        control.get("trades/{provider}/{order_id}") { _, context in
            await Self.answering { try self.show(try Self.key(context)) }
        }
        control.post("trades/{provider}/{order_id}/scan") { _, context in
            await Self.answering { try self.scan(try Self.key(context)) }
        }
        control.post("trades/{provider}/{order_id}/pay") { request, context in
            await Self.answering { try await self.pay(try Self.key(context), request) }
        }
        control.post("trades/{provider}/{order_id}/refund") { request, context in
            await Self.answering { try await self.refund(try Self.key(context), request) }
        }
        control.post("faults") { request, _ in await Self.answering { try await self.planFault(request) } }
        control.delete("faults") { _, _ in
            self.emulator.state.withLock { $0.faults.removeAll() }
            return Response(status: .noContent)
        }
        control.get("calls") { request, _ in
            await Self.answering { try self.calls(provider: request.uri.queryParameters["provider"].map(String.init)) }
        }
        control.delete("calls") { _, _ in
            self.emulator.state.withLock { $0.calls.removeAll() }
            return Response(status: .noContent)
        }
    }

    // MARK: Trades

    private struct OpenRequest: Decodable {
        let provider: String
        let orderID: String
        let amount: Int64
        let currency: String

        enum CodingKeys: String, CodingKey {
            case provider, amount, currency
            case orderID = "order_id"
        }
    }

    private func open(_ request: Request) async throws(ControlError) -> Response {
        let body = try await Self.decode(OpenRequest.self, request)
        let provider = try Self.provider(body.provider)
        guard !body.orderID.isEmpty, body.orderID.count <= 64 else {
            throw ControlError(.badRequest, "invalid_order_id", "order_id must be 1–64 characters")
        }
        guard body.amount > 0 else { throw ControlError(.badRequest, "invalid_amount", "amount must be above zero") }
        let currency = body.currency.uppercased()
        guard currency.count == 3 else {
            throw ControlError(.badRequest, "invalid_currency", "currency must be a three-letter code")
        }
        guard provider != .alipay || currency == "CNY" else {
            throw ControlError(.badRequest, "invalid_currency", "Alipay trades are in CNY")
        }
        let paymentID =
            switch provider {
            case .wechatpay: Identifiers.wechatPayTransactionID()
            case .alipay: Identifiers.alipayTradeNo()
            case .stripe, .sandbox: Identifiers.paymentIntentID()
            }
        let now = self.emulator.now()
        let price = Money(amount: body.amount, currency: currency)
        let opened = self.emulator.state.withLock { state in
            Result { () throws(TradeBook.AmountConflict) in
                try state.trades.open(
                    provider: provider,
                    orderID: body.orderID,
                    price: price,
                    now: now,
                    paymentID: paymentID
                )
            }
        }
        switch opened {
        case .success(let (trade, created)): return Self.json(created ? .created : .ok, TradeView(trade))
        case .failure(let conflict):
            throw ControlError(
                .conflict,
                "amount_mismatch",
                "the trade exists with amount \(conflict.existing.price.amount) \(conflict.existing.price.currency)"
            )
        }
    }

    private func show(_ key: TradeBook.Key) throws(ControlError) -> Response {
        guard let trade = self.emulator.state.withLock({ $0.trades[key.provider, key.orderID] }) else {
            throw Self.unknown(key)
        }
        return Self.json(.ok, TradeView(trade))
    }

    private func scan(_ key: TradeBook.Key) throws(ControlError) -> Response {
        let trade = try self.change(key) { trade throws(Trade.Refusal) in try trade.scanned() }
        return Self.json(.ok, TradeView(trade))
    }

    /// What to do with the callback a payment or refund calls for.
    private struct CallbackRequest: Decodable {
        enum Mode: String, Decodable {
            case send, drop, delay
        }

        let callback: Mode?
        let delayMilliseconds: Int?
        let amount: Int64?

        enum CodingKeys: String, CodingKey {
            case callback, amount
            case delayMilliseconds = "delay_ms"
        }

        /// The delay before the first attempt, or nil to drop the callback.
        var delay: Duration? {
            switch self.callback ?? .send {
            case .send: .zero
            case .drop: nil
            case .delay: .milliseconds(max(0, self.delayMilliseconds ?? 1_000))
            }
        }
    }

    private func pay(_ key: TradeBook.Key, _ request: Request) async throws(ControlError) -> Response {
        let body = try await Self.decode(CallbackRequest.self, request, emptyAs: "{}")
        if let amount = body.amount, amount <= 0 {
            throw ControlError(.badRequest, "invalid_amount", "amount must be above zero")
        }
        let now = self.emulator.now()
        let trade = try self.change(key) { trade throws(Trade.Refusal) in
            try trade.paymentMade(
                Money(amount: body.amount ?? trade.price.amount, currency: trade.price.currency),
                now: now
            )
        }
        if let delay = body.delay, let paid = trade.paid {
            let simulator = self.emulator.simulator
            let eventID = UUID().uuidString.lowercased()
            self.emulator.callbacks.send(
                .init(
                    provider: trade.provider,
                    orderID: trade.orderID,
                    request: { now in
                        try simulator.delivery(
                            provider: trade.provider,
                            orderID: trade.orderID,
                            outcome: .succeeded,
                            paid: paid,
                            now: now,
                            eventID: eventID,
                            paymentID: trade.paymentID
                        )
                    },
                    delay: delay
                )
            )
        }
        return Self.json(.ok, TradeView(trade))
    }

    private func refund(_ key: TradeBook.Key, _ request: Request) async throws(ControlError) -> Response {
        let body = try await Self.decode(CallbackRequest.self, request, emptyAs: "{}")
        let trade = try self.change(key) { trade throws(Trade.Refusal) in try trade.refundMade() }
        if let delay = body.delay, let paid = trade.paid {
            let simulator = self.emulator.simulator
            let eventID = UUID().uuidString.lowercased()
            self.emulator.callbacks.send(
                .init(
                    provider: trade.provider,
                    orderID: trade.orderID,
                    request: { now in
                        try simulator.refundDelivery(
                            provider: trade.provider,
                            orderID: trade.orderID,
                            refunded: paid,
                            now: now,
                            eventID: eventID,
                            paymentID: trade.paymentID
                        )
                    },
                    delay: delay
                )
            )
        }
        return Self.json(.ok, TradeView(trade))
    }

    /// Applies `input` to the trade under the lock; the trade as it is after.
    private func change(
        _ key: TradeBook.Key,
        _ input: (inout Trade) throws(Trade.Refusal) -> Void
    ) throws(ControlError) -> Trade {
        let result = self.emulator.state.withLock { state -> Result<Trade, Trade.Refusal>? in
            do throws(Trade.Refusal) {
                return try state.trades.update(provider: key.provider, orderID: key.orderID) {
                    trade throws(Trade.Refusal) in
                    try input(&trade)
                    return trade
                }
                .map { .success($0) }
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case nil: throw Self.unknown(key)
        case .success(let trade)?: return trade
        case .failure(let refusal)?: throw ControlError(.conflict, refusal.code, refusal.message)
        }
    }

    /// A trade as the control API shows it.
    private struct TradeView: Encodable {
        let provider: Provider
        let orderID: String
        /// The provider's id once it has one: Stripe's PaymentIntent from the start, Alipay's
        /// trade_no from the scan, WeChat Pay's transaction_id from the payment.
        let paymentID: String?
        let state: Trade.State
        let amount: Int64
        let currency: String
        let paidAmount: Int64?
        let createdAtMilliseconds: Int64
        /// What a query would answer, in the provider's words.
        let providerState: String

        init(_ trade: Trade) {
            self.provider = trade.provider
            self.orderID = trade.orderID
            self.paymentID = trade.visiblePaymentID
            self.state = trade.state
            self.amount = trade.price.amount
            self.currency = trade.price.currency
            self.paidAmount = trade.paid?.amount
            self.createdAtMilliseconds = Int64(trade.createdAt.timeIntervalSince1970 * 1000)
            self.providerState = trade.providerState
        }

        enum CodingKeys: String, CodingKey {
            case provider, state, amount, currency
            case orderID = "order_id"
            case paymentID = "payment_id"
            case paidAmount = "paid_amount"
            case createdAtMilliseconds = "created_at_ms"
            case providerState = "provider_state"
        }
    }

    // MARK: Faults and calls

    private struct FaultRequest: Decodable {
        let provider: String
        let fault: String
        let count: Int?
        let retryAfterSeconds: Int?

        enum CodingKeys: String, CodingKey {
            case provider, fault, count
            case retryAfterSeconds = "retry_after_seconds"
        }
    }

    private func planFault(_ request: Request) async throws(ControlError) -> Response {
        let body = try await Self.decode(FaultRequest.self, request)
        let provider = try Self.provider(body.provider)
        guard let fault = Fault(rawValue: body.fault) else {
            let names = Fault.allCases.map(\.rawValue).joined(separator: ", ")
            throw ControlError(.badRequest, "invalid_fault", "fault must be one of \(names)")
        }
        guard provider != .stripe || !fault.concernsSignature else {
            throw ControlError(.badRequest, "unsupported_fault", "Stripe's answers carry no signature to spoil")
        }
        let count = body.count ?? 1
        let retryAfter = body.retryAfterSeconds ?? 1
        guard count >= 1, retryAfter >= 0 else {
            throw ControlError(.badRequest, "invalid_count", "count must be 1 or more, retry_after_seconds 0 or more")
        }
        self.emulator.state.withLock {
            $0.faults.add(fault, count: count, retryAfterSeconds: retryAfter, for: provider)
        }
        return Self.json(
            .created,
            ["provider": provider.rawValue, "fault": fault.rawValue, "count": String(count)]
        )
    }

    private func calls(provider name: String?) throws(ControlError) -> Response {
        let provider = try name.map { name throws(ControlError) in try Self.provider(name) }
        return Self.json(.ok, self.emulator.state.withLock { $0.calls.calls(to: provider) })
    }

    // MARK: Helpers

    /// A refusal of the control API.
    struct ControlError: Error {
        let status: HTTPResponse.Status
        let code: String
        let message: String

        init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
            self.status = status
            self.code = code
            self.message = message
        }
    }

    /// The answer `work` makes, or its refusal as `{"error":{"code","message"}}`.
    private static func answering(_ work: () async throws -> Response) async -> Response {
        do {
            return try await work()
        } catch let error as ControlError {
            return Self.json(error.status, ["error": ["code": error.code, "message": error.message]])
        } catch {
            return Self.json(.internalServerError, ["error": ["code": "internal", "message": "\(error)"]])
        }
    }

    private static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        .bytes(status, JSON.encode(value))
    }

    private static func decode<T: Decodable>(
        _ type: T.Type,
        _ request: Request,
        emptyAs empty: String? = nil
    ) async throws(ControlError) -> T {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: 64 * 1024) else {
            throw ControlError(.contentTooLarge, "body_too_large", "the body is over 64 KB")
        }
        var bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty, let empty { bytes = Array(empty.utf8) }
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw ControlError(.badRequest, "invalid_body", "the body is not the JSON expected: \(error)")
        }
    }

    private static func provider(_ name: String) throws(ControlError) -> Provider {
        guard let provider = Provider(rawValue: name), provider != .sandbox else {
            throw ControlError(.badRequest, "invalid_provider", "provider must be wechatpay, alipay or stripe")
        }
        return provider
    }

    private static func key(_ context: BasicRequestContext) throws(ControlError) -> TradeBook.Key {
        guard let name = context.parameters.get("provider"), let orderID = context.parameters.get("order_id") else {
            throw ControlError(.notFound, "not_found", "no such route")
        }
        return TradeBook.Key(provider: try Self.provider(name), orderID: orderID.removingPercentEncoding ?? orderID)
    }

    private static func unknown(_ key: TradeBook.Key) -> ControlError {
        ControlError(.notFound, "trade_not_found", "no \(key.provider.rawValue) trade for order \(key.orderID)")
    }
}
