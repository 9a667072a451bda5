import Foundation
import NIOHTTP1
import Payments
import ProviderAPIs
import Testing

/// The Stripe client against a local server that checks the key and the pinned version.
@Suite struct StripeClientTests {
    static let trade = TradeReference(orderID: "order-1", paymentID: "pi_123")

    static func client(_ baseURL: String, _ http: ProviderHTTP) throws -> StripeClient {
        try StripeClient(
            // Long, as WeChatPayClientTests.client explains.
            configuration: .init(
                baseURL: baseURL,
                allowPlainHTTP: true,
                secretKey: "sk_test_123",
                timeout: .seconds(60)
            ),
            http: http
        )
    }

    static func intent(_ status: String, orderID: String? = "order-1", id: String = "pi_123") -> String {
        let metadata = orderID.map { #"{"order_id":"\#($0)"}"# } ?? "{}"
        return
            #"{"id":"\#(id)","object":"payment_intent","status":"\#(status)","amount":1000,"amount_received":\#(status == "succeeded" ? 1000 : 0),"currency":"usd","metadata":\#(metadata)}"#
    }

    static func error(_ status: Int, code: String, intentStatus: String? = nil) -> CannedResponse {
        let intent = intentStatus.map { #","payment_intent":\#(Self.intent($0))"# } ?? ""
        return CannedResponse(
            status: status,
            json: #"{"error":{"code":"\#(code)","type":"invalid_request_error","message":"m"\#(intent)}}"#
        )
    }

    /// Answers `route(method, index)` to requests with the key and version, 401 to others.
    static func api(_ route: @escaping @Sendable (ReceivedRequest, Int) -> CannedResponse) -> TestHTTPServer.Handler {
        { request, index in
            guard request.headers.first(name: "Authorization") == "Bearer sk_test_123",
                request.headers.first(name: "Stripe-Version") == "2025-04-30.basil"
            else { return Self.error(401, code: "api_key_invalid") }
            return route(request, index)
        }
    }

    /// A succeeded intent is a success with amount_received; the request is a GET of the intent.
    @Test func querySucceeded() async throws {
        try await withClient(
            Self.client,
            answering: Self.api { _, _ in CannedResponse(status: 200, json: Self.intent("succeeded")) }
        ) { client, server in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == PaymentEvent(kind: .succeeded, paid: Money(amount: 1_000, currency: "USD")))
            #expect(result.providerState == "succeeded")
            let request = try #require(server.requests.first)
            #expect(request.method == "GET")
            #expect(request.uri == "/v1/payment_intents/pi_123")
        }
    }

    /// 404 resource_missing is no payment on a query, and not found on a close.
    @Test func resourceMissing() async throws {
        try await withClient(Self.client, answering: Self.api { _, _ in Self.error(404, code: "resource_missing") }) {
            client,
            server in
            let result = try await client.query(Self.trade, now: Date())
            #expect(result.event == nil)
            #expect(result.providerState == "resource_missing")
            #expect(try await client.close(Self.trade, now: Date()) == .notFound)
            #expect(server.requests.count == 2)
        }
    }

    /// An order without a PaymentIntent id, or with something else, is noReference, and nothing is sent.
    @Test func noReference() async throws {
        try await withClient(Self.client, answering: Self.api { _, _ in CannedResponse(status: 500) }) {
            client,
            server in
            for paymentID in [nil, "", "pi_1/../../v1/refunds", "ch_123"] {
                let trade = TradeReference(orderID: "order-1", paymentID: paymentID)
                let query = await callError { () async throws(ProviderCallError) in
                    try await client.query(trade, now: Date())
                }
                let close = await callError { () async throws(ProviderCallError) in
                    try await client.close(trade, now: Date())
                }
                for error in [query, close] {
                    guard case .noReference = error else {
                        Issue.record("\(String(describing: paymentID)): \(String(describing: error))")
                        continue
                    }
                }
            }
            #expect(server.requests.isEmpty)
        }
    }

    /// An intent whose metadata names another order is rejected, on a query and on a close, which then cancels nothing.
    @Test func wrongOrder() async throws {
        try await withClient(
            Self.client,
            answering: Self.api { _, _ in
                CannedResponse(status: 200, json: Self.intent("succeeded", orderID: "order-2"))
            }
        ) { client, server in
            let query = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(query?.rejectedCode == "other_order")
            let close = await callError { () async throws(ProviderCallError) in
                try await client.close(Self.trade, now: Date())
            }
            #expect(close?.rejectedCode == "other_order")
            #expect(server.requests.allSatisfy { $0.method == "GET" })
        }
    }

    /// A cancel that succeeds is closed; the POST carries the reason, the version and an Idempotency-Key.
    @Test func cancelCloses() async throws {
        try await withClient(
            Self.client,
            answering: Self.api { request, _ in
                CannedResponse(
                    status: 200,
                    json: Self.intent(request.method == "POST" ? "canceled" : "requires_payment_method")
                )
            }
        ) { client, server in
            #expect(try await client.close(Self.trade, now: Date()) == .closed)
            let cancel = try #require(server.requests.last)
            #expect(cancel.method == "POST")
            #expect(cancel.uri == "/v1/payment_intents/pi_123/cancel")
            #expect(cancel.body == Array("cancellation_reason=abandoned".utf8))
            #expect(cancel.headers.first(name: "Content-Type") == "application/x-www-form-urlencoded")
            #expect(UUID(uuidString: cancel.headers.first(name: "Idempotency-Key") ?? "") != nil)
        }
    }

    /// payment_intent_unexpected_state is refused, unless the intent is canceled already: then closed.
    @Test(arguments: [
        ("succeeded", CloseResult.refused(code: "payment_intent_unexpected_state")), ("canceled", .closed),
    ])
    func unexpectedState(intentStatus: String, expected: CloseResult) async throws {
        try await withClient(
            Self.client,
            answering: Self.api { request, _ in
                request.method == "POST"
                    ? Self.error(400, code: "payment_intent_unexpected_state", intentStatus: intentStatus)
                    : CannedResponse(status: 200, json: Self.intent(intentStatus))
            }
        ) { client, _ in
            let answer132 = try await client.close(Self.trade, now: Date())
            #expect(answer132 == expected)
        }
    }

    /// A bad key is rejected with Stripe's code.
    @Test func badKeyRejected() async throws {
        let handler: TestHTTPServer.Handler = { _, _ in Self.error(401, code: "api_key_invalid") }
        try await withClient(Self.client, answering: handler) {
            client,
            _ in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            guard case .rejected(let status, let code, _) = error else {
                Issue.record("expected rejected, got \(String(describing: error))")
                return
            }
            #expect(status == 401)
            #expect(code == "api_key_invalid")
        }
    }

    /// The transport's retries of one cancel reuse its Idempotency-Key; the next cancel has a new one.
    @Test func idempotencyKeyPerLogicalCancel() async throws {
        try await withClient(
            Self.client,
            answering: Self.api { request, index in
                guard request.method == "POST" else {
                    return CannedResponse(status: 200, json: Self.intent("requires_payment_method"))
                }
                // The first cancel fails twice before it is answered.
                return index == 1 || index == 2
                    ? Self.error(500, code: "api_error")
                    : CannedResponse(status: 200, json: Self.intent("canceled"))
            }
        ) { client, server in
            let answer162 = try await client.close(Self.trade, now: Date())
            #expect(answer162 == .closed)
            let answer163 = try await client.close(Self.trade, now: Date())
            #expect(answer163 == .closed)
            let keys = server.requests.filter { $0.method == "POST" }.map {
                $0.headers.first(name: "Idempotency-Key") ?? ""
            }
            #expect(keys.count == 4)
            #expect(Set(keys[0...2]).count == 1)
            #expect(keys[3] != keys[0])
        }
    }

    /// The secret key never shows in a description of the configuration.
    @Test func secretKeyIsRedacted() throws {
        let configuration = try StripeClient.Configuration(secretKey: "sk_live_verysecret")
        #expect(!String(describing: configuration).contains("verysecret"))
        #expect(!String(reflecting: configuration).contains("verysecret"))
        #expect(throws: ProviderConfigurationError.self) { try StripeSecretKey("pk_live_1") }
        #expect(throws: ProviderConfigurationError.self) { try StripeSecretKey("sk_live_1\r\nX: y") }
    }
}
