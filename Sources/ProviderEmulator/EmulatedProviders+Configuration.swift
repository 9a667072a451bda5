public import _CryptoExtras

extension EmulatedProviders {
    /// Where the emulator listens, where its callbacks go, each provider's keys as the provider
    /// holds them, and the knobs of its rules.
    public struct Configuration: Sendable {
        /// The address to bind; `port` 0 takes any free port (``EmulatedProviders/serve(configuration:logger:now:_:)``
        /// reports the one bound).
        public var host: String
        public var port: Int
        /// Our service's base URL (`http://127.0.0.1:8080`): callbacks go to
        /// `<webhookBaseURL>/v1/webhooks/{provider}`.
        public var webhookBaseURL: String
        public var wechatPay: WeChatPay
        public var alipay: Alipay
        public var stripe: Stripe
        /// WeChat Pay's rule that an order cannot be closed until 5 minutes after it was made
        /// (provider-apis.md §4); until then a close answers `403 RULE_LIMIT`. Shorten it for demos.
        public var closeMinimumAge: Duration
        /// How long a `timeout` fault holds its answer: longer than a client's timeout.
        public var hang: Duration
        /// The pauses between attempts at a callback our server did not acknowledge: one attempt,
        /// then one more after each pause. The real providers retry for a day or three (§4); a few
        /// quick tries are enough to exercise our side.
        public var callbackRetryDelays: [Duration]

        public init(
            host: String = "127.0.0.1",
            port: Int = 8090,
            webhookBaseURL: String,
            wechatPay: WeChatPay,
            alipay: Alipay,
            stripe: Stripe,
            closeMinimumAge: Duration = .seconds(300),
            hang: Duration = .seconds(30),
            callbackRetryDelays: [Duration] = [.milliseconds(250), .seconds(1), .seconds(3)]
        ) {
            self.host = host
            self.port = port
            self.webhookBaseURL = webhookBaseURL
            self.wechatPay = wechatPay
            self.alipay = alipay
            self.stripe = stripe
            self.closeMinimumAge = closeMinimumAge
            self.hang = hang
            self.callbackRetryDelays = callbackRetryDelays
        }

        /// WeChat Pay's side of one merchant.
        public struct WeChatPay: Sendable {
            /// The merchant's `mchid`: requests signed for another are refused.
            public var merchantID: String
            /// Verifies the merchant's API requests (the public half of its API key).
            public var merchantPublicKey: _RSA.Signing.PublicKey
            /// Signs answers and callbacks, under `platformSerial` (`Wechatpay-Serial`).
            public var platformPrivateKey: _RSA.Signing.PrivateKey
            public var platformSerial: String
            /// Encrypts callback resources (32 characters).
            public var apiV3Key: String
            public var appID: String

            public init(
                merchantID: String,
                merchantPublicKey: _RSA.Signing.PublicKey,
                platformPrivateKey: _RSA.Signing.PrivateKey,
                platformSerial: String,
                apiV3Key: String,
                appID: String = "wxdevappid000000"
            ) {
                self.merchantID = merchantID
                self.merchantPublicKey = merchantPublicKey
                self.platformPrivateKey = platformPrivateKey
                self.platformSerial = platformSerial
                self.apiV3Key = apiV3Key
                self.appID = appID
            }
        }

        /// Alipay's side of one app.
        public struct Alipay: Sendable {
            public var appID: String
            /// Verifies the app's gateway requests.
            public var appPublicKey: _RSA.Signing.PublicKey
            /// Signs gateway answers and notifications (Alipay's own key).
            public var alipayPrivateKey: _RSA.Signing.PrivateKey

            public init(appID: String, appPublicKey: _RSA.Signing.PublicKey, alipayPrivateKey: _RSA.Signing.PrivateKey)
            {
                self.appID = appID
                self.appPublicKey = appPublicKey
                self.alipayPrivateKey = alipayPrivateKey
            }
        }

        /// Stripe's side of one account.
        public struct Stripe: Sendable {
            /// The secret API key (`sk_…`) every API call must carry.
            public var secretKey: String
            /// The webhook endpoint's signing secret (`whsec_…`).
            public var webhookSecret: String

            public init(secretKey: String, webhookSecret: String) {
                self.secretKey = secretKey
                self.webhookSecret = webhookSecret
            }
        }
    }
}
