package import NIOHTTP1

/// One request to a provider, ready to send: the client built and signed it; the transport only
/// sends these bytes.
package struct ProviderRequest: Sendable {
    package var method: HTTPMethod
    package var url: String
    package var headers: HTTPHeaders
    package var body: [UInt8]

    package init(method: HTTPMethod, url: String, headers: HTTPHeaders, body: [UInt8]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A provider's answer as received, body read whole (at most ``ProviderHTTP/Configuration/maximumBodyBytes``).
/// Nothing in it is believed until the client has verified it.
package struct ProviderResponse: Sendable {
    package var status: Int
    package var headers: HTTPHeaders
    package var body: [UInt8]

    package init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What a client makes of one answer: the answer to return, or a reason to try again (a
/// provider's "system busy" that comes as a `200`, as Alipay's `20000` does).
package enum ProviderVerdict<Answer: Sendable>: Sendable {
    case answer(Answer)
    case retry(String)
}
