import Foundation
import HTTPTypes
import Hummingbird
import Payments
import Synchronization

/// Stripe's PaymentIntent retrieve and cancel (provider-apis.md §3), as `api.stripe.com` serves
/// them.
///
/// Every call must carry the configured secret key, as `Authorization: Bearer sk_…` or HTTP Basic
/// with the key as user name; else `401`. A cancel with an `Idempotency-Key` is answered once and
/// the same answer (status and body) is sent again for every repeat with the same parameters, with
/// `Idempotent-Replayed: true`; the key with other parameters is a `400 idempotency_error`.
/// Stripe's answers carry no signature, so the signature faults are refused by the control API.
struct StripeAPI: Sendable {
    let emulator: Emulator

    /// What Stripe allows `cancellation_reason` to be.
    private static let cancellationReasons: Set = ["duplicate", "fraudulent", "requested_by_customer", "abandoned"]

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/payment_intents/{id}") { request, context in
            await self.retrieve(request, id: try context.parameters.require("id"))
        }
        router.post("/v1/payment_intents/{id}/cancel") { request, context in
            await self.cancel(request, id: try context.parameters.require("id"))
        }
    }

    private func retrieve(_ request: Request, id: String) async -> Response {
        let trade = self.trade(id)
        let call = APICall(provider: .stripe, operation: "query", orderID: trade?.orderID ?? id)
        return await self.emulator.perform(call, faultAnswer: Self.faultAnswer) { _ in
            if let refusal = self.authenticate(request) { return refusal }
            guard let trade else { return Self.missing(id) }
            return .bytes(.ok, JSON.encode(Self.paymentIntent(trade)))
        }
    }

    private func cancel(_ request: Request, id: String) async -> Response {
        var request = request
        let body = (try? await request.collectBody(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        let call = APICall(provider: .stripe, operation: "close", orderID: self.trade(id)?.orderID ?? id)
        let key = request.headers[Self.idempotencyKey]
        let fingerprint = "POST \(request.uri.path)\n\(body)"
        return await self.emulator.perform(call, faultAnswer: Self.faultAnswer) { _ in
            if let refusal = self.authenticate(request) { return refusal }
            let reason = formParameters(body)?.first { $0.name == "cancellation_reason" }?.value
            if let reason, !Self.cancellationReasons.contains(reason) {
                return Self.error(
                    .badRequest,
                    code: "parameter_invalid_string",
                    message:
                        "Invalid cancellation_reason: must be one of \(Self.cancellationReasons.sorted().joined(separator: ", "))",
                    param: "cancellation_reason"
                )
            }
            let now = self.emulator.now()
            // Looked up, performed and saved under one lock: a concurrent repeat of the key sees
            // either nothing or the saved answer, never a second cancel.
            let (status, answer, replayed) = self.emulator.state.withLock { state -> (Int, [UInt8], Bool) in
                if let key {
                    switch state.idempotency.lookup(key: key, fingerprint: fingerprint) {
                    case .replay(let saved): return (saved.status, saved.body, true)
                    case .mismatch:
                        let (status, body) = Self.idempotencyMismatch(key)
                        return (status, body, false)
                    case .unused: break
                    }
                }
                let (status, body) = Self.cancel(id: id, reason: reason, now: now, in: &state.trades)
                if let key {
                    state.idempotency.save(.init(fingerprint: fingerprint, status: status, body: body), key: key)
                }
                return (status, body, false)
            }
            var headers: HTTPFields = [:]
            if replayed { headers[Self.idempotentReplayed] = "true" }
            if let key { headers[Self.idempotencyKey] = key }
            return .bytes(.init(code: status), answer, headers: headers)
        }
    }

    /// Cancels the PaymentIntent `id` in `trades`: the status and body to answer.
    private static func cancel(
        id: String,
        reason: String?,
        now: Date,
        in trades: inout TradeBook
    ) -> (Int, [UInt8]) {
        guard let found = trades.trade(paymentID: id), found.provider == .stripe else {
            return (404, Self.missingBody(id))
        }
        let outcome = trades.update(provider: .stripe, orderID: found.orderID) { trade in
            trade.closeRequested(now: now, minimumAge: nil, reason: reason)
        }
        let trade = trades[.stripe, found.orderID] ?? found
        switch outcome {
        case .closed?: return (200, JSON.encode(Self.paymentIntent(trade)))
        case .paid?, .alreadyClosed?, .notFound?, .tooEarly?, nil:
            let intent = Self.paymentIntent(trade)
            return (
                400,
                JSON.encode(
                    ErrorBody(
                        error: .init(
                            type: "invalid_request_error",
                            code: "payment_intent_unexpected_state",
                            message:
                                "You cannot cancel this PaymentIntent because it has a status of \(intent.status). "
                                + "Only a PaymentIntent with one of the following statuses may be canceled: "
                                + "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
                            param: nil,
                            paymentIntent: intent
                        )
                    )
                )
            )
        }
    }

    private func trade(_ id: String) -> Trade? {
        self.emulator.state.withLock { $0.trades.trade(paymentID: id) }.flatMap { $0.provider == .stripe ? $0 : nil }
    }

    /// The `401` refusing the call, or nil when it carries the secret key.
    private func authenticate(_ request: Request) -> Response? {
        let secretKey = self.emulator.configuration.stripe.secretKey
        let header = request.headers[.authorization] ?? ""
        let presented: String?
        if header.hasPrefix("Bearer ") {
            presented = String(header.dropFirst("Bearer ".count))
        } else if header.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst("Basic ".count)))
        {
            // `-u sk_…:`: the key is the user name, with no password.
            presented = String(decoding: decoded, as: UTF8.self).split(separator: ":", omittingEmptySubsequences: false)
                .first.map(String.init)
        } else {
            presented = nil
        }
        guard let presented else {
            return Self.error(
                .unauthorized,
                code: "api_key_missing",
                message: "You did not provide an API key. You need to provide your API key in the Authorization header."
            )
        }
        guard presented == secretKey else {
            return Self.error(
                .unauthorized,
                code: "api_key_invalid",
                message: "Invalid API Key provided: \(presented.prefix(8))****\(presented.suffix(4))"
            )
        }
        return nil
    }

    /// The PaymentIntent as Stripe renders it.
    private static func paymentIntent(_ trade: Trade) -> PaymentIntent {
        return PaymentIntent(
            id: trade.paymentID,
            amount: trade.price.amount,
            amountReceived: trade.paid?.amount ?? 0,
            currency: trade.price.currency.lowercased(),
            status: trade.stripeStatus,
            metadata: ["order_id": trade.orderID],
            created: Int64(trade.createdAt.timeIntervalSince1970),
            cancellationReason: trade.cancellationReason,
            canceledAt: trade.closedAt.map { Int64($0.timeIntervalSince1970) }
        )
    }

    private static func missing(_ id: String) -> Response { .bytes(.notFound, Self.missingBody(id)) }

    private static func missingBody(_ id: String) -> [UInt8] {
        JSON.encode(
            ErrorBody(
                error: .init(
                    type: "invalid_request_error",
                    code: "resource_missing",
                    message: "No such payment_intent: '\(id)'",
                    param: "intent",
                    paymentIntent: nil
                )
            )
        )
    }

    private static func idempotencyMismatch(_ key: String) -> (Int, [UInt8]) {
        (
            400,
            JSON.encode(
                ErrorBody(
                    error: .init(
                        type: "idempotency_error",
                        code: nil,
                        message:
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                            + "Try using a key other than '\(key)' if you meant to execute a different request.",
                        param: nil,
                        paymentIntent: nil
                    )
                )
            )
        )
    }

    private static func error(
        _ status: HTTPResponse.Status,
        code: String,
        message: String,
        param: String? = nil,
        type: String = "invalid_request_error"
    ) -> Response {
        .bytes(
            status,
            JSON.encode(
                ErrorBody(error: .init(type: type, code: code, message: message, param: param, paymentIntent: nil))
            )
        )
    }

    /// `500 api_error`, or `429` with `Retry-After` and the code `rate_limit` (Stripe documents the
    /// 429, not its body: the code is from memory, unchecked).
    private static func faultAnswer(_ fault: Fault, retryAfterSeconds: Int) -> Response {
        guard fault == .rateLimit else {
            return Self.error(
                .internalServerError,
                code: "api_error",
                message: "An unknown error occurred",
                type: "api_error"
            )
        }
        var response = Self.error(
            .tooManyRequests,
            code: "rate_limit",
            message:
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
        )
        response.headers[.retryAfter] = String(retryAfterSeconds)
        return response
    }

    private static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    private static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!

    private struct PaymentIntent: Encodable {
        var object = "payment_intent"
        let id: String
        let amount: Int64
        let amountReceived: Int64
        let currency: String
        let status: String
        let metadata: [String: String]
        let created: Int64
        var livemode = false
        let cancellationReason: String?
        let canceledAt: Int64?

        init(
            id: String,
            amount: Int64,
            amountReceived: Int64,
            currency: String,
            status: String,
            metadata: [String: String],
            created: Int64,
            cancellationReason: String?,
            canceledAt: Int64?
        ) {
            self.id = id
            self.amount = amount
            self.amountReceived = amountReceived
            self.currency = currency
            self.status = status
            self.metadata = metadata
            self.created = created
            self.cancellationReason = cancellationReason
            self.canceledAt = canceledAt
        }

        enum CodingKeys: String, CodingKey {
            case object, id, amount, currency, status, metadata, created, livemode
            case amountReceived = "amount_received"
            case cancellationReason = "cancellation_reason"
            case canceledAt = "canceled_at"
        }
    }

    private struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let type: String
            let code: String?
            let message: String
            let param: String?
            let paymentIntent: PaymentIntent?

            enum CodingKeys: String, CodingKey {
                case type, code, message, param
                case paymentIntent = "payment_intent"
            }
        }

        let error: Detail
    }
}
