public import Foundation
public import ProviderEmulator
public import _CryptoExtras

/// The providers' keys and ours, made once per test process: WeChat Pay's platform key and
/// Alipay's (which the provider emulator signs with), the merchant's WeChat Pay API key and the
/// Alipay app key (which the service signs with), as PEM files for the service's settings.
public struct EmulatedProviderKeys: Sendable {
    public let directory: URL
    public let wechatPlatform = TestRSAKeys.key(1)
    public let wechatMerchant = TestRSAKeys.key(0)
    public let alipay = TestRSAKeys.key(4)
    public let alipayApp = TestRSAKeys.key(3)

    public static let shared = EmulatedProviderKeys()

    public static let merchantID = "1900000001"
    public static let merchantSerial = "TESTMERCHANTSERIAL"
    public static let platformSerial = "TESTPLATFORMSERIAL"
    public static let apiV3Key = "apiv3-key-for-tests-0123456789ab"
    public static let alipayAppID = "2021000000000001"
    public static let stripeKey = "sk_test_reconciliation_0123456789"
    public static let stripeSecret = "whsec_reconciliation_tests"

    init() {
        // Under the test run's work directory, which `make test` removes afterwards.
        let work = (try? TestEnvironment.workDirectory()) ?? FileManager.default.temporaryDirectory
        self.directory = work.appendingPathComponent("provider-keys-\(UUID())")
        try! FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.write("wechat-platform-public.pem", self.wechatPlatform.publicKey.pemRepresentation)
        self.write("wechat-merchant-private.pem", self.wechatMerchant.pemRepresentation)
        self.write("alipay-app-private.pem", self.alipayApp.pemRepresentation)
    }

    private func write(_ name: String, _ text: String) {
        try! text.write(to: self.directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    private func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }

    /// The service's settings for all three providers, their APIs at the emulator on `emulatorPort`.
    public func serviceSettings(emulatorPort: Int) -> [String: String] {
        let emulator = "http://127.0.0.1:\(emulatorPort)"
        return [
            "PAYNOTIFY_WECHATPAY_PLATFORM_KEYS": "\(Self.platformSerial)=\(self.path("wechat-platform-public.pem"))",
            "PAYNOTIFY_WECHATPAY_APIV3_KEY": Self.apiV3Key,
            "PAYNOTIFY_WECHATPAY_MCHID": Self.merchantID,
            "PAYNOTIFY_WECHATPAY_MERCHANT_SERIAL": Self.merchantSerial,
            "PAYNOTIFY_WECHATPAY_MERCHANT_KEY": self.path("wechat-merchant-private.pem"),
            "PAYNOTIFY_WECHATPAY_API_URL": emulator,
            "PAYNOTIFY_ALIPAY_PUBLIC_KEY": self.alipay.publicKey.pemRepresentation,
            "PAYNOTIFY_ALIPAY_APP_ID": Self.alipayAppID,
            "PAYNOTIFY_ALIPAY_APP_PRIVATE_KEY": self.path("alipay-app-private.pem"),
            "PAYNOTIFY_ALIPAY_GATEWAY_URL": "\(emulator)/gateway.do",
            "PAYNOTIFY_STRIPE_SECRETS": Self.stripeSecret,
            "PAYNOTIFY_STRIPE_API_KEY": Self.stripeKey,
            "PAYNOTIFY_STRIPE_API_URL": emulator,
            "PAYNOTIFY_ADMIN_TOKEN": TestSecrets.adminToken,
        ]
    }

    /// The emulator's configuration: on `port` (0 for any), its callbacks to the service's port.
    public func emulatorConfiguration(servicePort: Int, port: Int = 0) -> EmulatedProviders.Configuration {
        EmulatedProviders.Configuration(
            host: "127.0.0.1",
            port: port,
            webhookBaseURL: "http://127.0.0.1:\(servicePort)",
            wechatPay: .init(
                merchantID: Self.merchantID,
                merchantPublicKey: self.wechatMerchant.publicKey,
                platformPrivateKey: self.wechatPlatform,
                platformSerial: Self.platformSerial,
                apiV3Key: Self.apiV3Key
            ),
            alipay: .init(
                appID: Self.alipayAppID,
                appPublicKey: self.alipayApp.publicKey,
                alipayPrivateKey: self.alipay
            ),
            stripe: .init(secretKey: Self.stripeKey, webhookSecret: Self.stripeSecret),
            closeMinimumAge: .seconds(1),
            hang: .seconds(15)
        )
    }
}
