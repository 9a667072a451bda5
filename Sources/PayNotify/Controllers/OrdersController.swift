import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PaymentProviders
import Payments
import Signatures
import Storage

/// The merchant API (server to server, API key): create and read orders, push events onto an
/// order's stream, cancel a pending order.
struct OrdersController {
    let store: OrderStore
    let tokens: StreamTokenSigner
    let configuredProviders: Set<Provider>
    let maximumBodyBytes: Int
    /// The providers the reconciler asks (API credentials configured), and when it first asks.
    var reconciled: Set<Provider> = []
    var firstQueryAfter: Duration = .seconds(60)
    /// Wakes the reconciler when a cancel starts closing an order at its provider.
    var reconcilerWakeup: Wakeup?
    /// How long a cancel waits for the provider's close before answering `202`.
    var cancelWait: Duration = .seconds(10)

    /// How long a stream token stays valid after the order's own payment deadline.
    static let tokenGrace: TimeInterval = 3600

    func addRoutes(to group: RouterGroup<some RequestContext>) {
        group.post("/orders") { request, context in try await self.create(request, context: context) }
        group.get("/orders/{id}") { _, context in try await self.show(id: try context.parameters.require("id")) }
        group.post("/orders/{id}/events") { request, context in
            try await self.appendEvent(id: try context.parameters.require("id"), request: request, context: context)
        }
        group.post("/orders/{id}/cancel") { _, context in
            try await self.cancel(id: try context.parameters.require("id"))
        }
    }

    // MARK: Create

    struct CreateOrderRequest: Decodable {
        /// Read as any JSON value so `19.99` or `"1999"` get a message about the amount, not about the JSON.
        let amount: JSONValue?
        let currency: String?
        let provider: String?
        let merchantOrderID: String?
        let expiresIn: Int?
        let description: String?
        let metadata: JSONValue?
        let providerReference: String?

        enum CodingKeys: String, CodingKey {
            case amount, currency, provider, description, metadata
            case merchantOrderID = "merchant_order_id"
            case expiresIn = "expires_in"
            case providerReference = "provider_reference"
        }
    }

    /// The validated request in a canonical form: its hash tells a retry from a different request.
    private struct CanonicalRequest: Encodable {
        let amount: Int64
        let currency: String
        let provider: String
        let merchantOrderID: String?
        let expiresIn: Int
        let description: String?
        let metadata: JSONValue
        let providerReference: String?
    }

    private func create(_ request: Request, context: some RequestContext) async throws -> Response {
        let body: CreateOrderRequest = try await RequestJSON.decode(
            request,
            context: context,
            limit: self.maximumBodyBytes
        )
        return try await self.create(body, idempotencyKey: try Self.idempotencyKey(of: request))
    }

    /// The request's `Idempotency-Key`, if it sent one.
    private static func idempotencyKey(of request: Request) throws -> String? {
        try request.headers[.idempotencyKey].map { key in
            guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) else {
                throw APIError(
                    .badRequest,
                    code: "invalid_idempotency_key",
                    message: "Idempotency-Key must be 1–255 printable ASCII characters."
                )
            }
            return key
        }
    }

    /// Hex SHA-256 of a validated request's canonical JSON: what tells a retry from another request.
    private static func requestHash(of canonical: some Encodable) -> String {
        hexString(SHA256.hash(data: Array((JSONBody.text(of: canonical) ?? "").utf8)))
    }

    /// A create or event answer that an earlier request with the same key produced.
    private static func markReplayed(_ response: inout Response) {
        response.headers[.idempotentReplayed] = "true"
    }

    /// Validates a create request and creates the order (or finds the one an identical earlier
    /// request made). The checkout demo creates its sandbox orders through here too.
    func create(_ body: CreateOrderRequest, idempotencyKey: String?) async throws -> Response {
        let new = try self.validate(body)
        let canonical = CanonicalRequest(
            amount: new.price.amount,
            currency: new.price.currency,
            provider: new.provider.rawValue,
            merchantOrderID: new.merchantOrderID,
            expiresIn: new.expiresIn,
            description: new.description,
            metadata: body.metadata ?? .object([:]),
            providerReference: new.providerReference
        )
        let outcome = try await self.store.create(
            new,
            idempotencyKey: idempotencyKey,
            requestHash: Self.requestHash(of: canonical)
        )
        switch outcome {
        case .created(let order):
            return self.response(.created, for: order)
        case .replayed(let order):
            var response = self.response(.created, for: order)
            Self.markReplayed(&response)
            return response
        }
    }

    private func validate(_ body: CreateOrderRequest) throws -> NewOrder {
        guard let amountValue = body.amount else {
            throw invalid("amount", "is required: an integer in minor units (1999 is 19.99)")
        }
        guard case .integer(let amount) = amountValue else {
            throw invalid("amount", "must be an integer in minor units (1999 is 19.99), not \(amountValue.text)")
        }
        guard (1...1_000_000_000_000).contains(amount) else {
            throw invalid("amount", "must be between 1 and 10^12 minor units")
        }
        guard let currency = body.currency else {
            throw invalid("currency", "is required: three capital letters such as CNY")
        }
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw invalid("currency", "must be three capital letters (ISO 4217), such as CNY")
        }
        guard let providerName = body.provider else { throw invalid("provider", "is required") }
        guard let provider = Provider(rawValue: providerName) else {
            throw invalid("provider", "must be one of \(Provider.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard self.configuredProviders.contains(provider) else {
            throw invalid(
                "provider",
                "\(providerName) is not configured on this server, so its payments could not be verified"
            )
        }
        if let id = body.merchantOrderID {
            guard (1...64).contains(id.count),
                id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.:|*".contains($0)) })
            else {
                throw invalid("merchant_order_id", "must be 1–64 characters of letters, digits and _-.:|*")
            }
            // Providers name an order by our id or this one, ours first: one shaped like ours could
            // be another order's, whose webhooks would then never reach this one.
            guard !id.hasPrefix("ord_") else {
                throw invalid("merchant_order_id", "must not begin with ord_, which the service's own ids use")
            }
        }
        let expiresIn = body.expiresIn ?? 900
        guard (60...604_800).contains(expiresIn) else { throw invalid("expires_in", "must be 60 to 604800 seconds") }
        try checkText("description", body.description, maximumLength: 1000)
        let metadata = body.metadata ?? .object([:])
        guard case .object = metadata else { throw invalid("metadata", "must be a JSON object") }
        guard !metadata.containsNUL else { throw invalid("metadata", "must not contain U+0000") }
        guard metadata.text.utf8.count <= 4096 else { throw invalid("metadata", "must be at most 4096 bytes of JSON") }
        if let reference = body.providerReference {
            guard (1...255).contains(reference.count), reference.allSatisfy({ $0.isASCII && !$0.isWhitespace }),
                reference.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value < 0x7f })
            else {
                throw invalid(
                    "provider_reference",
                    "must be 1–255 printable ASCII characters without spaces (a pi_… id)"
                )
            }
        }
        return NewOrder(
            merchantOrderID: body.merchantOrderID,
            price: Money(amount: amount, currency: currency),
            provider: provider,
            description: body.description,
            metadata: metadata.text,
            expiresIn: expiresIn,
            providerReference: body.providerReference,
            firstQueryAfter: self.reconciled.contains(provider) ? self.firstQueryAfter : nil
        )
    }

    // MARK: Cancel

    /// Cancels a pending order. When its provider is reconciled, the payment is closed at the
    /// provider first (``Reconciler``): the answer waits up to ``cancelWait`` for that, and is
    /// `200` with the canceled order, `409` when a payment got there first, or `202` with the
    /// order still `pending` while the provider has not answered (closing goes on; the order's
    /// stream and the merchant's webhooks say how it ends).
    private func cancel(id: String) async throws -> Response {
        guard let order = try await self.store.order(id: id) else { throw OrderStoreError.orderNotFound }
        guard self.reconciled.contains(order.provider) else {
            return self.response(.ok, for: try await self.store.cancel(orderID: id))
        }
        var current = try await self.store.startClosing(orderID: id, reason: .canceled)
        self.reconcilerWakeup?.signal()
        let deadline = ContinuousClock.now + self.cancelWait
        while current.status == .pending, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            current = try await self.store.order(id: id) ?? current
        }
        switch current.status {
        case .canceled: return self.response(.ok, for: current)
        case .pending: return self.response(.accepted, for: current)
        default: throw OrderStoreError.notCancelable(current.status)
        }
    }

    // MARK: Read

    private func show(id: String) async throws -> Response {
        guard let order = try await self.store.order(id: id) else { throw OrderStoreError.orderNotFound }
        return self.response(.ok, for: order)
    }

    // MARK: Merchant events

    /// A validated event request in a canonical form (``requestHash(of:)``).
    private struct CanonicalEvent: Encodable {
        let orderID: String
        let event: String
        let data: JSONValue
    }

    private struct EventRequest: Decodable {
        let event: String?
        let stage: String?
        let percent: Int?
        let message: String?
        let data: JSONValue?
    }

    /// Names a merchant may not use: the service's own events.
    static let reservedEventNames: Set<String> = ["status", "finish"]

    private func appendEvent(id: String, request: Request, context: some RequestContext) async throws -> Response {
        let body: EventRequest = try await RequestJSON.decode(request, context: context, limit: self.maximumBodyBytes)
        guard let name = body.event else { throw invalid("event", "is required: \"progress\" or a name of your own") }
        guard (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy({
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || "._-".utf8.contains($0)
            })
        else { throw invalid("event", "must match [a-z0-9._-]{1,64}") }
        guard !Self.reservedEventNames.contains(name) else {
            throw invalid("event", "\"\(name)\" is reserved for the service's own events")
        }
        let data: JSONValue
        if name == "progress" {
            if let percent = body.percent, !(0...100).contains(percent) { throw invalid("percent", "must be 0 to 100") }
            try checkText("stage", body.stage, maximumLength: 64)
            try checkText("message", body.message, maximumLength: 500)
            var fields: [String: JSONValue] = ["order_id": .string(id)]
            fields["stage"] = body.stage.map(JSONValue.string)
            fields["percent"] = body.percent.map { .integer(Int64($0)) }
            fields["message"] = body.message.map(JSONValue.string)
            data = .object(fields)
        } else {
            data = body.data ?? .object([:])
            guard case .object = data else { throw invalid("data", "must be a JSON object") }
            guard !data.containsNUL else { throw invalid("data", "must not contain U+0000") }
            guard data.text.utf8.count <= 4096 else { throw invalid("data", "must be at most 4096 bytes of JSON") }
        }
        let (eventID, replayed) = try await self.store.appendMerchantEvent(
            orderID: id,
            name: name,
            data: data.text,
            idempotency: try Self.idempotencyKey(of: request).map { key in
                (key, Self.requestHash(of: CanonicalEvent(orderID: id, event: name, data: data)))
            }
        )
        var response = ResponseJSON.response(
            .created,
            ["id": .integer(eventID), "event": .string(name), "order_id": .string(id)]
        )
        if replayed { Self.markReplayed(&response) }
        return response
    }

    // MARK: Responses

    private func response(_ status: HTTPResponse.Status, for order: Order) -> Response {
        let token = self.tokens.token(orderID: order.id, expiresAt: order.expiresAt.addingTimeInterval(Self.tokenGrace))
        let fields: [String: JSONValue] = [
            "id": .string(order.id),
            "status": .string(order.status.rawValue),
            "amount": .integer(order.price.amount),
            "currency": .string(order.price.currency),
            "provider": .string(order.provider.rawValue),
            "merchant_order_id": order.merchantOrderID.map(JSONValue.string) ?? .null,
            "description": order.description.map(JSONValue.string) ?? .null,
            "metadata": JSONValue.parse(order.metadata) ?? .object([:]),
            "expires_at": .string(ResponseJSON.timestamp(order.expiresAt)),
            "created_at": .string(ResponseJSON.timestamp(order.createdAt)),
            "updated_at": .string(ResponseJSON.timestamp(order.updatedAt)),
            "provider_reference": order.providerReference.map(JSONValue.string) ?? .null,
            "stream_token": .string(token),
            "stream_url": .string("/v1/orders/\(order.id)/events?token=\(token)"),
        ]
        return ResponseJSON.response(status, fields)
    }
}

/// Free text bound for a `text` column: no U+0000 (PostgreSQL cannot store it) and a length in
/// code points, which is what the schema's `char_length` checks count (not Swift's characters:
/// "e" plus a combining accent is one Character but two code points).
private func checkText(_ field: String, _ value: String?, maximumLength: Int) throws {
    guard let value else { return }
    guard !value.unicodeScalars.contains("\0") else { throw invalid(field, "must not contain U+0000") }
    guard value.unicodeScalars.count <= maximumLength else {
        throw invalid(field, "must be at most \(maximumLength) characters (Unicode code points)")
    }
}

/// A 422 naming the field and what it must be.
extension HTTPField.Name {
    fileprivate static let idempotencyKey = Self("Idempotency-Key")!
    fileprivate static let idempotentReplayed = Self("Idempotent-Replayed")!
}
