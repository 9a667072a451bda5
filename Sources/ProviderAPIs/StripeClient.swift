public import Foundation
import NIOHTTP1
import PaymentProviders
public import Payments

/// Stripe's PaymentIntents API, for reconciliation: retrieve an order's PaymentIntent, cancel it.
///
/// Stripe's API answers are not signed: TLS to `api.stripe.com` (certificate and host name
/// checked by ``ProviderHTTP``) is what makes an answer Stripe's. That is why the base URL must
/// be `https` outside tests.
///
/// The order is known by its PaymentIntent id (``TradeReference/paymentID``; without one,
/// ``ProviderCallError/noReference(_:)``). An intent whose `metadata.order_id` names another order
/// (neither our id nor the merchant's)
/// is ``ProviderCallError/rejected(status:code:message:)``: an id stored against the wrong order
/// must never settle this one, nor be cancelled on its behalf (a close retrieves the intent and
/// checks it before cancelling).
public struct StripeClient: ProviderClient {
    public let provider = Provider.stripe
    private let configuration: Configuration
    private let http: ProviderHTTP
    private let limiter: RateLimiter

    /// The API version every request asks for. Pinned, so that the shape of answers (statuses,
    /// error fields) stays the one this code reads when the account's default version is
    /// upgraded in the dashboard.
    public static let apiVersion = "2025-04-30.basil"

    public init(configuration: Configuration, http: ProviderHTTP) {
        self.configuration = configuration
        self.http = http
        self.limiter = RateLimiter(configuration.rateLimit)
    }

    /// `GET /v1/payment_intents/{id}`: the intent's status as a ``PaymentEvent``
    /// (``StripePaymentIntent/statusEvent``); `404 resource_missing` → no payment (`event: nil`).
    public func query(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> TradeQueryResult {
        let id = try Self.paymentIntentID(trade)
        let retrieved = try await self.retrieve(id, trade, now: now)
        guard let intent = retrieved.intent else {
            return TradeQueryResult(event: nil, providerState: "resource_missing", rawBody: retrieved.body)
        }
        let status = intent.status ?? ""
        // An unknown status is not "no payment": it must not read as `event: nil`.
        guard let event = intent.statusEvent else {
            throw .rejected(
                status: 200,
                code: "unknown_status",
                message: "PaymentIntent status \(status.prefix(40)) is not one this service knows"
            )
        }
        return TradeQueryResult(event: event, providerState: status, rawBody: retrieved.body)
    }

    /// Retrieves the intent (to check it is this order's), then
    /// `POST /v1/payment_intents/{id}/cancel` with `cancellation_reason=abandoned`:
    /// - `200` → ``CloseResult/closed``; `404 resource_missing` → ``CloseResult/notFound``;
    /// - `400 payment_intent_unexpected_state` → ``CloseResult/closed`` when the intent is
    ///   `canceled` already, else ``CloseResult/refused(code:)`` (succeeded or processing: query).
    ///
    /// The cancel carries an `Idempotency-Key`, new for each call of this method and the same for
    /// the transport's retries of it, so a retry after a lost answer cannot act twice. It is not
    /// derived from the order: Stripe keeps the first answer under a key for 24 hours, a `500`
    /// included, so a key per order would replay one failure to every later close of that order.
    public func close(_ trade: TradeReference, now: Date) async throws(ProviderCallError) -> CloseResult {
        let id = try Self.paymentIntentID(trade)
        guard try await self.retrieve(id, trade, now: now).intent != nil else { return .notFound }
        let idempotencyKey = UUID().uuidString
        return try await self.http.call(
            .stripe,
            "cancel",
            limiter: self.limiter,
            timeout: self.configuration.timeout,
            now: now
        ) { _ throws(ProviderCallError) in
            self.cancelRequest(id, idempotencyKey: idempotencyKey)
        } interpret: { response, _ throws(ProviderCallError) in
            try Self.readCancel(response, id: id, trade)
        }
    }

    // MARK: Requests

    /// `GET /v1/payment_intents/{id}`.
    package func retrieveRequest(_ id: String) -> ProviderRequest {
        ProviderRequest(
            method: .GET,
            url: self.configuration.baseURL.url(self.path(id)),
            headers: self.headers(),
            body: []
        )
    }

    /// `POST /v1/payment_intents/{id}/cancel`, `cancellation_reason=abandoned`.
    package func cancelRequest(_ id: String, idempotencyKey: String) -> ProviderRequest {
        var headers = self.headers()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        headers.add(name: "Idempotency-Key", value: idempotencyKey)
        return ProviderRequest(
            method: .POST,
            url: self.configuration.baseURL.url(self.path(id) + "/cancel"),
            headers: headers,
            body: Array("cancellation_reason=abandoned".utf8)
        )
    }

    private func path(_ id: String) -> String {
        self.configuration.baseURL.path + "/v1/payment_intents/" + PercentEncoding.segment(id)
    }

    private func headers() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(self.configuration.secretKey.value)")
        headers.add(name: "Stripe-Version", value: Self.apiVersion)
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: "PayNotify/1.0")
        return headers
    }

    // MARK: Answers

    /// The intent, checked to be this order's, and the body as received; no intent for
    /// `404 resource_missing`.
    private func retrieve(_ id: String, _ trade: TradeReference, now: Date) async throws(ProviderCallError)
        -> Retrieved
    {
        try await self.http.call(
            .stripe,
            "retrieve",
            limiter: self.limiter,
            timeout: self.configuration.timeout,
            now: now
        ) { _ throws(ProviderCallError) in
            self.retrieveRequest(id)
        } interpret: { response, _ throws(ProviderCallError) in
            .answer(try Self.readRetrieve(response, id: id, trade))
        }
    }

    private struct Retrieved: Sendable {
        let intent: StripePaymentIntent?
        let body: [UInt8]
    }

    private static func readRetrieve(_ response: ProviderResponse, id: String, _ trade: TradeReference)
        throws(ProviderCallError) -> Retrieved
    {
        switch response.status {
        case 200:
            let intent = try Self.intent(response, id: id, trade)
            return Retrieved(intent: intent, body: response.body)
        case 404 where Self.error(response)?.code == "resource_missing":
            return Retrieved(intent: nil, body: response.body)
        default:
            throw Self.rejection(response)
        }
    }

    private static func readCancel(_ response: ProviderResponse, id: String, _ trade: TradeReference)
        throws(ProviderCallError) -> ProviderVerdict<CloseResult>
    {
        switch response.status {
        case 200:
            let intent = try Self.intent(response, id: id, trade)
            return .answer(intent.status == "canceled" ? .closed : .refused(code: intent.status ?? "unknown_status"))
        case 400:
            guard let error = Self.error(response), error.code == "payment_intent_unexpected_state" else {
                throw Self.rejection(response)
            }
            // Cancelling a cancelled intent is this error too; it is closed all the same.
            if error.paymentIntent?.status == "canceled" { return .answer(.closed) }
            return .answer(.refused(code: "payment_intent_unexpected_state"))
        case 404 where Self.error(response)?.code == "resource_missing":
            return .answer(.notFound)
        case 409:
            // The same key is still being processed (an earlier attempt of this call): ask again.
            return .retry("HTTP 409 \(Self.error(response)?.code ?? "conflict")")
        default:
            throw Self.rejection(response)
        }
    }

    /// The intent in a `200`, checked to be the one asked about and this order's.
    private static func intent(_ response: ProviderResponse, id: String, _ trade: TradeReference)
        throws(ProviderCallError) -> StripePaymentIntent
    {
        guard let intent = try? JSONDecoder().decode(StripePaymentIntent.self, from: Data(response.body)) else {
            throw .rejected(
                status: response.status,
                code: "unreadable_answer",
                message: "the answer is not a PaymentIntent"
            )
        }
        if let answered = intent.id, answered != id {
            throw .rejected(
                status: response.status,
                code: "other_payment_intent",
                message: "asked for \(id.prefix(64)), Stripe answered about \(answered.prefix(64))"
            )
        }
        // The metadata names the order as the merchant's checkout put it: our id or the merchant's.
        if let orderID = intent.metadata?["order_id"], orderID != trade.orderID, orderID != trade.merchantOrderID {
            throw .rejected(
                status: response.status,
                code: "other_order",
                message:
                    "PaymentIntent \(id.prefix(64)) belongs to order \(orderID.prefix(64)), not \(trade.orderID.prefix(64))"
            )
        }
        return intent
    }

    private struct ErrorEnvelope: Decodable {
        let error: StripeError
    }

    private struct StripeError: Decodable {
        let code: String?
        let type: String?
        let message: String?
        let paymentIntent: StripePaymentIntent?

        enum CodingKeys: String, CodingKey {
            case code, type, message
            case paymentIntent = "payment_intent"
        }
    }

    private static func error(_ response: ProviderResponse) -> StripeError? {
        (try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(response.body)))?.error
    }

    /// `401`/`403` (key revoked, restricted key lacking permission), `400` parameters, a `3xx`:
    /// an operator must look.
    private static func rejection(_ response: ProviderResponse) -> ProviderCallError {
        let error = Self.error(response)
        return .rejected(
            status: response.status,
            code: String((error?.code ?? error?.type ?? "http_\(response.status)").prefix(64)),
            message: String((error?.message ?? "no message").prefix(200))
        )
    }

    /// The PaymentIntent id, which must look like one: it goes into the path.
    private static func paymentIntentID(_ trade: TradeReference) throws(ProviderCallError) -> String {
        guard let id = trade.paymentID, !id.isEmpty else {
            throw .noReference("the order has no Stripe PaymentIntent id")
        }
        guard id.hasPrefix("pi_"), id.count <= 255,
            id.utf8.allSatisfy({ byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            })
        else { throw .noReference("the order's payment id is not a PaymentIntent id (pi_…)") }
        return id
    }
}
