import ProviderAPIs
import Testing

@Suite struct ProviderBaseURLTests {
    /// An https URL is kept as origin and path, without a trailing slash.
    @Test func httpsWithPath() throws {
        let url = try ProviderBaseURL("https://openapi.alipay.com/gateway.do/")
        #expect(url.origin == "https://openapi.alipay.com")
        #expect(url.path == "/gateway.do")
        #expect(try ProviderBaseURL("https://api.stripe.com").path == "")
        #expect(try ProviderBaseURL("http://127.0.0.1:8080/", allowPlainHTTP: true).origin == "http://127.0.0.1:8080")
    }

    /// Plain http (unless allowed), credentials, a query, a fragment, spaces and other schemes are refused.
    @Test(arguments: [
        "http://api.stripe.com", "https://user:pass@api.stripe.com", "https://api.stripe.com/?a=1",
        "https://api.stripe.com/#x", "https://api stripe.com", "ftp://api.stripe.com", "https://", "api.stripe.com",
    ])
    func refused(_ text: String) {
        #expect(throws: ProviderConfigurationError.self) { try ProviderBaseURL(text) }
    }

    /// Encoding leaves only unreserved characters, and a path segment cannot be `.` or `..`.
    @Test func percentEncoding() {
        #expect(PercentEncoding.encode("2014-07-24 03:07:50") == "2014-07-24%2003%3A07%3A50")
        #expect(PercentEncoding.encode("a+b/c=d&e~_.") == "a%2Bb%2Fc%3Dd%26e~_.")
        #expect(PercentEncoding.encode("支") == "%E6%94%AF")
        #expect(PercentEncoding.segment("..") == "%2E%2E")
    }
}
