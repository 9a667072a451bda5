import PaymentProviders
public import _CryptoExtras

extension AlipayClient {
    /// What an Alipay client needs, keys parsed (public key mode; certificate mode's
    /// `app_cert_sn` and `alipay_root_cert_sn` are not sent). Built from configuration text with
    /// ``init(gatewayURL:allowPlainHTTP:appID:appPrivateKeyText:alipayPublicKeyTexts:rateLimit:timeout:)``.
    public struct Configuration: Sendable {
        /// The production gateway; the sandbox is `https://openapi-sandbox.dl.alipaydev.com/gateway.do`.
        public static let defaultGatewayURL = "https://openapi.alipay.com/gateway.do"

        public let gatewayURL: ProviderBaseURL
        public let appID: String
        /// The app's private key (应用私钥): signs requests.
        public let appPrivateKey: _RSA.Signing.PrivateKey
        /// Alipay's public keys (支付宝公钥): verify answers.
        public let alipayPublicKeys: [_RSA.Signing.PublicKey]
        public let rateLimit: RateLimit
        /// Each attempt's deadline.
        public let timeout: Duration

        /// - Throws: when the app id is not digits, no Alipay key is given, or the timeout is not
        ///   positive.
        public init(
            gatewayURL: ProviderBaseURL,
            appID: String,
            appPrivateKey: _RSA.Signing.PrivateKey,
            alipayPublicKeys: [_RSA.Signing.PublicKey],
            rateLimit: RateLimit = .alipay,
            timeout: Duration = .seconds(10)
        ) throws(ProviderConfigurationError) {
            guard !appID.isEmpty, appID.count <= 32,
                appID.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
            else { throw ProviderConfigurationError("the Alipay app_id must be 1–32 digits") }
            guard !alipayPublicKeys.isEmpty else {
                throw ProviderConfigurationError("no Alipay public key is configured")
            }
            guard timeout > .zero else { throw ProviderConfigurationError("the Alipay timeout must be positive") }
            self.gatewayURL = gatewayURL
            self.appID = appID
            self.appPrivateKey = appPrivateKey
            self.alipayPublicKeys = alipayPublicKeys
            self.rateLimit = rateLimit
            self.timeout = timeout
        }

        /// Builds the configuration from text: the app key as PEM (PKCS #1 or #8) or bare base64
        /// as Alipay's tool shows it; each Alipay key as bare base64, PEM, or a certificate.
        /// - Throws: as the other initializer, and when a key does not parse (the message names
        ///   which key, never its text).
        public init(
            gatewayURL: String = Self.defaultGatewayURL,
            allowPlainHTTP: Bool = false,
            appID: String,
            appPrivateKeyText: String,
            alipayPublicKeyTexts: [String],
            rateLimit: RateLimit = .alipay,
            timeout: Duration = .seconds(10)
        ) throws(ProviderConfigurationError) {
            let privateKey: _RSA.Signing.PrivateKey
            do {
                privateKey = try _RSA.Signing.PrivateKey(providerPEM: appPrivateKeyText)
            } catch {
                throw ProviderConfigurationError("the Alipay app private key: \(error.message)")
            }
            var publicKeys: [_RSA.Signing.PublicKey] = []
            for (index, text) in alipayPublicKeyTexts.enumerated() {
                do {
                    publicKeys.append(try _RSA.Signing.PublicKey(providerText: text))
                } catch {
                    throw ProviderConfigurationError("Alipay public key #\(index + 1): \(error.message)")
                }
            }
            try self.init(
                gatewayURL: ProviderBaseURL(gatewayURL, allowPlainHTTP: allowPlainHTTP),
                appID: appID,
                appPrivateKey: privateKey,
                alipayPublicKeys: publicKeys,
                rateLimit: rateLimit,
                timeout: timeout
            )
        }
    }
}
