import Foundation
public import Payments
public import ProviderAPIs

extension AppConfiguration {
    /// Asking providers about payments whose callbacks have not come, and closing payments at the
    /// provider before orders expire or are canceled. A provider is reconciled only with its API
    /// credentials (and its webhook keys, which verify its answers too); without them it works
    /// webhook-only, as before.
    public struct Reconciliation: Sendable {
        public var rules: ReconciliationRules
        /// How soon after its creation WeChat Pay accepts a close (its 5-minute rule).
        public var wechatPayCloseAfter: Duration
        public var wechatPay: WeChatPayClient.Configuration?
        public var alipay: AlipayClient.Configuration?
        public var stripe: StripeClient.Configuration?

        /// The providers that can be asked.
        public var providers: [Provider] {
            [
                self.wechatPay.map { _ in .wechatpay }, self.alipay.map { _ in .alipay },
                self.stripe.map { _ in .stripe },
            ]
            .compactMap { $0 }
        }

        init(_ reader: SettingsReader, providers: Providers) {
            let defaults = ReconciliationRules.standard
            self.rules = ReconciliationRules(
                after: reader.durations("PAYNOTIFY_RECONCILE_AFTER", default: defaults.after).sorted(),
                every: reader.duration("PAYNOTIFY_RECONCILE_EVERY", default: defaults.every),
                closeGiveUp: reader.duration("PAYNOTIFY_CLOSE_GIVE_UP", default: defaults.closeGiveUp)
            )
            self.wechatPayCloseAfter = reader.duration("PAYNOTIFY_WECHATPAY_CLOSE_AFTER", default: .seconds(300))
            self.wechatPay = Self.wechatPay(reader, webhooks: providers.wechatPay)
            self.alipay = Self.alipay(reader, webhooks: providers.alipay)
            self.stripe = Self.stripe(reader)
        }

        private static func wechatPay(_ reader: SettingsReader, webhooks: Providers.WeChatPay?)
            -> WeChatPayClient.Configuration?
        {
            let names = [
                "PAYNOTIFY_WECHATPAY_MCHID", "PAYNOTIFY_WECHATPAY_MERCHANT_SERIAL", "PAYNOTIFY_WECHATPAY_MERCHANT_KEY",
            ]
            guard let values = Self.together(reader, names) else { return nil }
            guard let webhooks else {
                reader.refuse(
                    names[0],
                    "needs PAYNOTIFY_WECHATPAY_PLATFORM_KEYS and PAYNOTIFY_WECHATPAY_APIV3_KEY: the platform keys verify the API's answers too"
                )
                return nil
            }
            guard let key = reader.file(values[2], setting: names[2]) else { return nil }
            let urlSetting = "PAYNOTIFY_WECHATPAY_API_URL"
            let url = reader.string(urlSetting) ?? WeChatPayClient.Configuration.defaultBaseURL
            return Self.building(reader, urlSetting) { () throws(ProviderConfigurationError) in
                try WeChatPayClient.Configuration(
                    baseURL: url,
                    allowPlainHTTP: Self.isLoopback(url),
                    merchantID: values[0],
                    merchantSerial: values[1],
                    merchantPrivateKeyPEM: key,
                    platformKeyTexts: webhooks.platformKeys,
                    // With several platform keys configured, answers are expected from the first
                    // serial (the one callbacks are simulated with too).
                    platformSerial: webhooks.platformKeys.keys.sorted().first,
                    rateLimit: Self.rateLimit(reader, "PAYNOTIFY_WECHATPAY_RATE_LIMIT")
                )
            }
        }

        private static func alipay(_ reader: SettingsReader, webhooks: Providers.Alipay?) -> AlipayClient.Configuration?
        {
            let name = "PAYNOTIFY_ALIPAY_APP_PRIVATE_KEY"
            guard let path = reader.string(name) else { return nil }
            guard let webhooks else {
                reader.refuse(
                    name,
                    "needs PAYNOTIFY_ALIPAY_PUBLIC_KEY and PAYNOTIFY_ALIPAY_APP_ID: Alipay's key verifies the gateway's answers too"
                )
                return nil
            }
            guard let key = reader.file(path, setting: name) else { return nil }
            let urlSetting = "PAYNOTIFY_ALIPAY_GATEWAY_URL"
            let url = reader.string(urlSetting) ?? AlipayClient.Configuration.defaultGatewayURL
            return Self.building(reader, urlSetting) { () throws(ProviderConfigurationError) in
                try AlipayClient.Configuration(
                    gatewayURL: url,
                    allowPlainHTTP: Self.isLoopback(url),
                    appID: webhooks.appID,
                    appPrivateKeyText: key,
                    alipayPublicKeyTexts: [webhooks.publicKey],
                    rateLimit: Self.rateLimit(reader, "PAYNOTIFY_ALIPAY_RATE_LIMIT")
                )
            }
        }

        private static func stripe(_ reader: SettingsReader) -> StripeClient.Configuration? {
            let name = "PAYNOTIFY_STRIPE_API_KEY"
            guard let key = reader.secrets(name, minimumLength: 8, required: false).first else { return nil }
            let urlSetting = "PAYNOTIFY_STRIPE_API_URL"
            let url = reader.string(urlSetting) ?? StripeClient.Configuration.defaultBaseURL
            return Self.building(reader, name) { () throws(ProviderConfigurationError) in
                try StripeClient.Configuration(
                    baseURL: url,
                    allowPlainHTTP: Self.isLoopback(url),
                    secretKey: key,
                    rateLimit: Self.rateLimit(reader, "PAYNOTIFY_STRIPE_RATE_LIMIT")
                )
            }
        }

        /// A client configuration, or `nil` and a refusal under `setting` saying why not.
        private static func building<T>(
            _ reader: SettingsReader,
            _ setting: String,
            _ build: () throws(ProviderConfigurationError) -> T
        ) -> T? {
            do {
                return try build()
            } catch {
                reader.refuse(setting, "cannot be used: \(error.message)")
                return nil
            }
        }

        /// The values of settings that go together: all of them, or `nil` (and a refusal naming
        /// the missing ones when only some are set).
        private static func together(_ reader: SettingsReader, _ names: [String]) -> [String]? {
            let values = names.map { reader.string($0) }
            guard values.contains(where: { $0 != nil }) else { return nil }
            let missing = zip(names, values).filter { $0.1 == nil }.map(\.0)
            guard missing.isEmpty else {
                let set = names.filter { !missing.contains($0) }.joined(separator: ", ")
                reader.refuse(missing[0], "is not set, but \(set) is")
                return nil
            }
            return values.compactMap { $0 }
        }

        /// Whether a provider URL names this machine: plain `http` is allowed there only (a local
        /// emulator), since Stripe's answers are authenticated by TLS alone and every request
        /// carries credentials.
        private static func isLoopback(_ url: String) -> Bool {
            guard let host = URLComponents(string: url)?.host else { return false }
            return ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
        }

        /// Requests a second to one provider from this instance, in bursts of at most 5. The
        /// default, 20, is below every limit found: Stripe allows 25 a second per endpoint in its
        /// sandbox (100 live); WeChat Pay and Alipay publish none for queries.
        private static func rateLimit(_ reader: SettingsReader, _ name: String) -> RateLimit {
            let perSecond = reader.integer(name, default: 20, in: 1...10_000)
            return (try? RateLimit(perSecond: Double(perSecond), burst: min(5, perSecond))) ?? .stripe
        }
    }
}
