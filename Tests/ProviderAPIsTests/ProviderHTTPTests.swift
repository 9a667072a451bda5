import Foundation
import NIOHTTP1
import Payments
import ProviderAPIs
import Testing

/// The transport's rules, seen through the WeChat Pay client.
@Suite struct ProviderHTTPTests {
    static let trade = WeChatPayClientTests.trade

    /// A provider that only ever answers 5xx gets exactly three requests, then the call is unavailable.
    @Test func serverErrorsEndUnavailable() async throws {
        let handler: TestHTTPServer.Handler = { _, _ in
            CannedResponse(status: 503, headers: [("Retry-After", "7")], json: #"{"code":"SERVICE_UNAVAILABLE"}"#)
        }
        try await withClient(WeChatPayClientTests.client, answering: handler) { client, server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            guard case .unavailable(_, let retryAfter) = error else {
                Issue.record("expected unavailable, got \(String(describing: error))")
                return
            }
            #expect(retryAfter == .seconds(7))
            #expect(server.requests.count == 3)
        }
    }

    /// 429 with Retry-After: 2 ends the call at once as rate limited for 2 s, without a retry.
    @Test func rateLimitedIsNotRetried() async throws {
        let handler: TestHTTPServer.Handler = { _, _ in
            CannedResponse(status: 429, headers: [("Retry-After", "2")], json: #"{"code":"RATELIMIT_EXCEEDED"}"#)
        }
        try await withClient(WeChatPayClientTests.client, answering: handler) { client, server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error == .rateLimited(retryAfter: .seconds(2)))
            #expect(server.requests.count == 1)
        }
    }

    /// After a 429, the next call to the provider waits out its Retry-After.
    @Test func rateLimitPausesTheLimiter() async throws {
        let handler: TestHTTPServer.Handler = { _, index in
            index == 0
                ? CannedResponse(status: 429, headers: [("Retry-After", "1")], json: "{}")
                : WeChatPayClientTests.signed(200, WeChatPayClientTests.paid)
        }
        try await withClient(WeChatPayClientTests.client, answering: handler) { client, _ in
            _ = await callError { () async throws(ProviderCallError) in try await client.query(Self.trade, now: Date())
            }
            let start = ContinuousClock.now
            _ = try await client.query(Self.trade, now: Date())
            #expect(start.duration(to: .now) >= .milliseconds(900))
        }
    }

    /// An answer that does not come before the deadline fails each attempt; after three the call is unavailable, long before the answer.
    @Test func hangEndsAtTheDeadline() async throws {
        let handler: TestHTTPServer.Handler = { _, _ in
            CannedResponse(status: 200, json: "{}").delayed(by: .seconds(60))
        }
        try await withClient(WeChatPayClientTests.impatientClient, answering: handler) { client, server in
            let start = ContinuousClock.now
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error?.isUnavailable == true, "\(String(describing: error))")
            // Three attempts; under load an attempt may end before its request reaches the server.
            #expect((1...3).contains(server.requests.count))
            // Long before the answer would come: not a timing of the attempts (about 1.7 s idle,
            // several times that when the machine is busy), only that the deadline cut them off.
            #expect(start.duration(to: .now) < .seconds(30))
        }
    }

    /// A connection that cannot be made is retried, then unavailable.
    @Test func connectionRefused() async throws {
        let http = ProviderHTTP(configuration: .init(retryDelays: [.milliseconds(5), .milliseconds(5)]))
        // Port 1 on the loopback: nothing listens there.
        let client = try WeChatPayClientTests.client("http://127.0.0.1:1", http)
        let error = await callError { () async throws(ProviderCallError) in
            try await client.query(Self.trade, now: Date())
        }
        try await http.shutdown()
        #expect(error?.isUnavailable == true, "\(String(describing: error))")
    }

    /// A body over the limit fails the call without a retry.
    @Test func oversizedBody() async throws {
        let handler: TestHTTPServer.Handler = { _, _ in
            CannedResponse(status: 200, body: Array(repeating: 0x20, count: 2_048))
        }
        try await TestHTTPServer.with(handler) { server in
            let http = ProviderHTTP(configuration: .init(retryDelays: [.milliseconds(5)], maximumBodyBytes: 1_024))
            let client = try WeChatPayClientTests.client(server.baseURL, http)
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            try await http.shutdown()
            #expect(error?.isUnavailable == true, "\(String(describing: error))")
            #expect(server.requests.count == 1)
        }
    }

    /// A redirect is not followed: it is refused.
    @Test func redirectsAreNotFollowed() async throws {
        let handler: TestHTTPServer.Handler = { request, _ in
            request.path == "/elsewhere"
                ? WeChatPayClientTests.signed(200, WeChatPayClientTests.paid)
                : CannedResponse(status: 302, headers: [("Location", "/elsewhere")])
        }
        try await withClient(WeChatPayClientTests.client, answering: handler) { client, server in
            let error = await callError { () async throws(ProviderCallError) in
                try await client.query(Self.trade, now: Date())
            }
            #expect(error?.rejectedCode == "HTTP_302")
            #expect(server.requests.count == 1)
        }
    }
}

extension CannedResponse {
    func delayed(by delay: Duration) -> CannedResponse {
        var response = self
        response.delay = delay
        return response
    }
}
