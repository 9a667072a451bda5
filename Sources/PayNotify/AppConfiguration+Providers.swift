import Foundation
public import PaymentProviders
public import Payments

extension AppConfiguration {
    /// The payment providers this service takes webhooks from, each with its keys read and parsed
    /// once, here: a provider without settings is not served. `paynotify serve` verifies with
    /// ``adapters``; `paynotify simulate` reads this same section, alone, for what its signing side
    /// shares with the server (``simulatorCredentials``).
    public struct Providers: Sendable {
        /// The WeChat Pay platform's keys and the merchant's APIv3 key.
        public struct WeChatPay: Sendable {
            /// Serial → PEM text (certificate or public key), read from the configured files.
            public var platformKeys: [String: String]
            public var apiV3Key: String
        }

        /// Alipay's public key and the merchant's app id.
        public struct Alipay: Sendable {
            /// PEM or bare base64 text.
            public var publicKey: String
            public var appID: String
        }

        public var sandboxSecrets: [String]
        public var stripeSecrets: [String]
        public var wechatPay: WeChatPay?
        public var alipay: Alipay?
        /// How far a signed webhook timestamp may be from now.
        public var webhookTolerance: Duration
        /// One verifying adapter per configured provider, made from the settings above.
        public let adapters: [Provider: any WebhookAdapter]

        /// Reads this section alone.
        ///
        /// - Throws: ``ConfigurationErrors`` naming every provider setting that is invalid.
        public init(environment: [String: String]) throws(ConfigurationErrors) {
            let reader = SettingsReader(environment: environment)
            self.init(reader)
            try reader.finish()
        }

        init(_ reader: SettingsReader) {
            let toleranceSeconds = reader.integer("PAYNOTIFY_WEBHOOK_TOLERANCE_SECONDS", default: 300, in: 1...86_400)
            let tolerance = TimeInterval(toleranceSeconds)
            self.webhookTolerance = .seconds(toleranceSeconds)
            self.sandboxSecrets = reader.secrets("PAYNOTIFY_SANDBOX_SECRETS", minimumLength: 8, required: false)
            self.stripeSecrets = reader.secrets("PAYNOTIFY_STRIPE_SECRETS", minimumLength: 8, required: false)
            var adapters: [Provider: any WebhookAdapter] = [:]
            if !self.sandboxSecrets.isEmpty {
                adapters[.sandbox] = SandboxAdapter(secrets: self.sandboxSecrets, tolerance: tolerance)
            }
            if !self.stripeSecrets.isEmpty {
                adapters[.stripe] = StripeAdapter(secrets: self.stripeSecrets, tolerance: tolerance)
            }
            (self.wechatPay, adapters[.wechatpay]) = Self.wechatPay(reader, tolerance: tolerance)
            // Alipay's notifications carry no signed timestamp to hold to a window (notify_time is
            // outside any guarantee); replays are absorbed by the inbox's unique notify_id instead.
            (self.alipay, adapters[.alipay]) = Self.alipay(reader)
            self.adapters = adapters
        }

        /// What a simulator signs with besides its private keys: the first secret of each list,
        /// the first WeChat Pay platform serial and the APIv3 key, the Alipay app id.
        public var simulatorCredentials: DeliverySimulator.Credentials {
            var credentials = DeliverySimulator.Credentials()
            credentials.sandboxSecret = self.sandboxSecrets.first
            credentials.stripeSecret = self.stripeSecrets.first
            credentials.wechatPaySerial = self.wechatPay?.platformKeys.keys.sorted().first
            credentials.wechatPayAPIv3Key = self.wechatPay?.apiV3Key
            credentials.alipayAppID = self.alipay?.appID
            return credentials
        }

        /// The WeChat Pay keys, read and parsed: each file must hold a key the adapter accepts.
        private static func wechatPay(_ reader: SettingsReader, tolerance: TimeInterval) -> (
            WeChatPay?, (any WebhookAdapter)?
        ) {
            let keysSetting = "PAYNOTIFY_WECHATPAY_PLATFORM_KEYS"
            let apiKeySetting = "PAYNOTIFY_WECHATPAY_APIV3_KEY"
            let entries = reader.list(keysSetting)
            let apiV3Key = reader.string(apiKeySetting)
            guard !entries.isEmpty || apiV3Key != nil else { return (nil, nil) }
            guard !entries.isEmpty else {
                reader.refuse(keysSetting, "is not set, but \(apiKeySetting) is")
                return (nil, nil)
            }
            guard let apiV3Key else {
                reader.refuse(apiKeySetting, "is not set, but \(keysSetting) is")
                return (nil, nil)
            }
            guard apiV3Key.utf8.count == 32 else {
                reader.refuse(apiKeySetting, "must be the 32-character APIv3 key from the merchant platform")
                return (nil, nil)
            }
            var keys: [String: String] = [:]
            for entry in entries {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    reader.refuse(keysSetting, "entry \"\(entry)\" is not SERIAL=path/to/pem")
                    return (nil, nil)
                }
                guard let text = reader.file(parts[1], setting: keysSetting) else { return (nil, nil) }
                keys[parts[0]] = text
            }
            do {
                let adapter = try WeChatPayAdapter(platformKeyTexts: keys, apiV3Key: apiV3Key, tolerance: tolerance)
                return (WeChatPay(platformKeys: keys, apiV3Key: apiV3Key), adapter)
            } catch {
                reader.refuse(keysSetting, "holds a key that cannot be used: \(error)")
                return (nil, nil)
            }
        }

        /// The Alipay public key (text, or a file holding it) and app id, parsed.
        private static func alipay(_ reader: SettingsReader) -> (Alipay?, (any WebhookAdapter)?) {
            let keySetting = "PAYNOTIFY_ALIPAY_PUBLIC_KEY"
            let appSetting = "PAYNOTIFY_ALIPAY_APP_ID"
            let value = reader.string(keySetting)
            let appID = reader.string(appSetting)
            guard value != nil || appID != nil else { return (nil, nil) }
            guard let value else {
                reader.refuse(keySetting, "is not set, but \(appSetting) is")
                return (nil, nil)
            }
            guard let appID else {
                reader.refuse(appSetting, "is not set, but \(keySetting) is")
                return (nil, nil)
            }
            // Key text is PEM or bare base64 (an RSA-2048 key is ~390 characters, and may hold "/"): a
            // value is a path only when it does not look like key text, and then the file must exist.
            let looksLikeKeyText = value.hasPrefix("-----BEGIN") || (value.count > 200 && !value.hasSuffix(".pem"))
            guard let text = looksLikeKeyText ? value : reader.file(value, setting: keySetting) else {
                return (nil, nil)
            }
            do {
                let adapter = try AlipayAdapter(publicKeyTexts: [text], appID: appID, tolerance: nil)
                return (Alipay(publicKey: text, appID: appID), adapter)
            } catch {
                reader.refuse(keySetting, "is not a usable RSA public key: \(error)")
                return (nil, nil)
            }
        }
    }
}
