import PaymentProviders
public import _CryptoExtras

extension WeChatPayClient {
    /// What a WeChat Pay client needs, keys parsed. Built from configuration text with
    /// ``init(baseURL:allowPlainHTTP:merchantID:merchantSerial:merchantPrivateKeyPEM:platformKeyTexts:platformSerial:rateLimit:timeout:timestampTolerance:)``.
    public struct Configuration: Sendable {
        /// WeChat Pay's main host ("the nearest access point"); `api2.mch.weixin.qq.com` is the
        /// backup in another region.
        public static let defaultBaseURL = "https://api.mch.weixin.qq.com"

        public let baseURL: ProviderBaseURL
        /// `mchid`.
        public let merchantID: String
        /// The merchant API certificate's serial (`serial_no` in `Authorization`).
        public let merchantSerial: String
        /// The merchant API private key (`apiclient_key.pem`): signs requests.
        public let merchantPrivateKey: _RSA.Signing.PrivateKey
        /// WeChat Pay platform keys by serial or public key ID: verify answers.
        public let platformKeys: [String: _RSA.Signing.PublicKey]
        /// The platform key we expect answers to be signed with, sent as `Wechatpay-Serial`.
        public let platformSerial: String
        public let rateLimit: RateLimit
        /// Each attempt's deadline.
        public let timeout: Duration
        /// How far an answer's `Wechatpay-Timestamp` may be from now.
        public let timestampTolerance: Duration

        /// - Parameter platformSerial: may be left out when one platform key is configured.
        /// - Throws: when an id would not fit in a header, no platform key is configured, the
        ///   expected serial is not one of them, or a duration is not positive.
        public init(
            baseURL: ProviderBaseURL,
            merchantID: String,
            merchantSerial: String,
            merchantPrivateKey: _RSA.Signing.PrivateKey,
            platformKeys: [String: _RSA.Signing.PublicKey],
            platformSerial: String? = nil,
            rateLimit: RateLimit = .weChatPay,
            timeout: Duration = .seconds(10),
            timestampTolerance: Duration = .seconds(300)
        ) throws(ProviderConfigurationError) {
            guard !merchantID.isEmpty, merchantID.count <= 32, merchantID.utf8.allSatisfy(Self.isDigit) else {
                throw ProviderConfigurationError("the WeChat Pay merchant id (mchid) must be 1–32 digits")
            }
            guard Self.isHeaderToken(merchantSerial) else {
                throw ProviderConfigurationError(
                    "the WeChat Pay merchant certificate serial must be letters and digits"
                )
            }
            guard !platformKeys.isEmpty else {
                throw ProviderConfigurationError("no WeChat Pay platform key is configured")
            }
            guard platformKeys.keys.allSatisfy(Self.isHeaderToken) else {
                throw ProviderConfigurationError("a WeChat Pay platform key serial must be letters, digits, _ or -")
            }
            let expected: String
            if let platformSerial {
                guard platformKeys[platformSerial] != nil else {
                    throw ProviderConfigurationError(
                        "the expected WeChat Pay platform serial \(platformSerial) is not among the platform keys"
                    )
                }
                expected = platformSerial
            } else if platformKeys.count == 1, let only = platformKeys.keys.first {
                expected = only
            } else {
                throw ProviderConfigurationError(
                    "several WeChat Pay platform keys are configured; say which one answers are expected from"
                )
            }
            guard timeout > .zero, timestampTolerance > .zero else {
                throw ProviderConfigurationError("the WeChat Pay timeout and timestamp tolerance must be positive")
            }
            self.baseURL = baseURL
            self.merchantID = merchantID
            self.merchantSerial = merchantSerial
            self.merchantPrivateKey = merchantPrivateKey
            self.platformKeys = platformKeys
            self.platformSerial = expected
            self.rateLimit = rateLimit
            self.timeout = timeout
            self.timestampTolerance = timestampTolerance
        }

        /// Builds the configuration from text: the merchant key as PEM (PKCS #8, as WeChat Pay's
        /// tool writes `apiclient_key.pem`), each platform key as a PEM public key or certificate.
        /// - Throws: as the other initializer, and when a key does not parse (the message names
        ///   which key, never its text).
        public init(
            baseURL: String = Self.defaultBaseURL,
            allowPlainHTTP: Bool = false,
            merchantID: String,
            merchantSerial: String,
            merchantPrivateKeyPEM: String,
            platformKeyTexts: [String: String],
            platformSerial: String? = nil,
            rateLimit: RateLimit = .weChatPay,
            timeout: Duration = .seconds(10),
            timestampTolerance: Duration = .seconds(300)
        ) throws(ProviderConfigurationError) {
            let privateKey: _RSA.Signing.PrivateKey
            do {
                privateKey = try _RSA.Signing.PrivateKey(providerPEM: merchantPrivateKeyPEM)
            } catch {
                throw ProviderConfigurationError("the WeChat Pay merchant private key: \(error.message)")
            }
            var platformKeys: [String: _RSA.Signing.PublicKey] = [:]
            for (serial, text) in platformKeyTexts {
                do {
                    platformKeys[serial] = try _RSA.Signing.PublicKey(providerText: text)
                } catch {
                    throw ProviderConfigurationError("the WeChat Pay platform key \(serial): \(error.message)")
                }
            }
            try self.init(
                baseURL: ProviderBaseURL(baseURL, allowPlainHTTP: allowPlainHTTP),
                merchantID: merchantID,
                merchantSerial: merchantSerial,
                merchantPrivateKey: privateKey,
                platformKeys: platformKeys,
                platformSerial: platformSerial,
                rateLimit: rateLimit,
                timeout: timeout,
                timestampTolerance: timestampTolerance
            )
        }

        private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

        /// 1–64 of `A–Z a–z 0–9 _ -`: safe inside `Authorization`'s quotes and as a header value.
        private static func isHeaderToken(_ text: String) -> Bool {
            !text.isEmpty && text.count <= 64
                && text.utf8.allSatisfy { byte in
                    Self.isDigit(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                        || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "_")
                        || byte == UInt8(ascii: "-")
                }
        }
    }
}
