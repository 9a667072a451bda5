extension StripeClient {
    /// What a Stripe client needs. The secret key is held in a ``StripeSecretKey``, which never
    /// prints.
    public struct Configuration: Sendable {
        public static let defaultBaseURL = "https://api.stripe.com"

        public let baseURL: ProviderBaseURL
        public let secretKey: StripeSecretKey
        public let rateLimit: RateLimit
        /// Each attempt's deadline.
        public let timeout: Duration

        /// - Throws: when the timeout is not positive.
        public init(
            baseURL: ProviderBaseURL,
            secretKey: StripeSecretKey,
            rateLimit: RateLimit = .stripe,
            timeout: Duration = .seconds(10)
        ) throws(ProviderConfigurationError) {
            guard timeout > .zero else { throw ProviderConfigurationError("the Stripe timeout must be positive") }
            self.baseURL = baseURL
            self.secretKey = secretKey
            self.rateLimit = rateLimit
            self.timeout = timeout
        }

        /// Builds the configuration from text.
        /// - Throws: as the other initializer, and when the URL or the key is not right.
        public init(
            baseURL: String = Self.defaultBaseURL,
            allowPlainHTTP: Bool = false,
            secretKey: String,
            rateLimit: RateLimit = .stripe,
            timeout: Duration = .seconds(10)
        ) throws(ProviderConfigurationError) {
            try self.init(
                baseURL: ProviderBaseURL(baseURL, allowPlainHTTP: allowPlainHTTP),
                secretKey: StripeSecretKey(secretKey),
                rateLimit: rateLimit,
                timeout: timeout
            )
        }
    }
}

/// A Stripe secret (`sk_…`) or restricted (`rk_…`) API key. Its descriptions are redacted, so
/// that a configuration logged whole does not carry it.
public struct StripeSecretKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The key itself: only for the `Authorization` header.
    package let value: String

    /// - Throws: unless the text is an `sk_` or `rk_` key of visible ASCII (it goes into a header).
    public init(_ text: String) throws(ProviderConfigurationError) {
        guard text.hasPrefix("sk_") || text.hasPrefix("rk_"), text.count > 3, text.count <= 255,
            text.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        else {
            throw ProviderConfigurationError("the Stripe secret key must be an sk_ or rk_ key of visible ASCII")
        }
        self.value = text
    }

    public var description: String { "\(self.value.prefix(3))…(redacted)" }
    public var debugDescription: String { self.description }
}
