import Foundation
import PaymentProviders
import _CryptoExtras

extension EmulatedProviders.Configuration {
    /// The settings `paynotify emulate-providers` reads, each missing or unusable one named.
    public struct SettingsError: Error, CustomStringConvertible {
        /// One line a setting.
        public let problems: [String]

        public var description: String { self.problems.joined(separator: "\n") }
    }

    /// Reads the providers' side of the development setup: identities and secrets from the same
    /// environment variables the service reads (so both agree), keys from `keysDirectory` as
    /// `make dev-keys` writes them.
    ///
    /// - `PAYNOTIFY_WECHATPAY_MCHID` (default `1900000000`), `PAYNOTIFY_WECHATPAY_APIV3_KEY`,
    ///   `PAYNOTIFY_WECHATPAY_PLATFORM_KEYS` (`SERIAL=path,…`: the first serial is the one signed
    ///   under), `PAYNOTIFY_ALIPAY_APP_ID`, `PAYNOTIFY_STRIPE_API_KEY`, `PAYNOTIFY_STRIPE_SECRETS`
    ///   (the first);
    /// - `wechatpay-platform-private.pem` (signs WeChat Pay's answers and callbacks),
    ///   `wechatpay-merchant-public.pem` (verifies our requests), `alipay-private.pem` (signs
    ///   Alipay's), `alipay-app-public.pem` (verifies ours).
    ///
    /// - Throws: every problem at once.
    public init(
        environment: [String: String],
        keysDirectory: String,
        host: String,
        port: Int,
        webhookBaseURL: String,
        closeMinimumAge: Duration
    ) throws(SettingsError) {
        var problems: [String] = []
        func setting(_ name: String, default fallback: String? = nil) -> String {
            let value = environment[name].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
            if value == nil { problems.append("\(name) is not set") }
            return value ?? ""
        }
        func first(_ name: String) -> String {
            String(setting(name).split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
        }
        func text(_ file: String) -> String? {
            let path = URL(fileURLWithPath: keysDirectory).appendingPathComponent(file).path
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                problems.append("\(path) cannot be read (make dev-keys writes it)")
                return nil
            }
            return text
        }
        func privateKey(_ file: String) -> _RSA.Signing.PrivateKey? {
            guard let text = text(file) else { return nil }
            do {
                return try _RSA.Signing.PrivateKey(providerPEM: text)
            } catch {
                problems.append("\(file): \(error.message)")
                return nil
            }
        }
        func publicKey(_ file: String) -> _RSA.Signing.PublicKey? {
            guard let text = text(file) else { return nil }
            do {
                return try _RSA.Signing.PublicKey(providerText: text)
            } catch {
                problems.append("\(file): \(error.message)")
                return nil
            }
        }

        let merchantID = setting("PAYNOTIFY_WECHATPAY_MCHID", default: "1900000000")
        let apiV3Key = setting("PAYNOTIFY_WECHATPAY_APIV3_KEY")
        if !apiV3Key.isEmpty, apiV3Key.utf8.count != 32 {
            problems.append("PAYNOTIFY_WECHATPAY_APIV3_KEY has \(apiV3Key.utf8.count) bytes; it must have 32")
        }
        let platformSerial = first("PAYNOTIFY_WECHATPAY_PLATFORM_KEYS").split(separator: "=").first.map(String.init)
        let appID = setting("PAYNOTIFY_ALIPAY_APP_ID")
        let stripeKey = setting("PAYNOTIFY_STRIPE_API_KEY")
        let stripeSecret = first("PAYNOTIFY_STRIPE_SECRETS")
        let merchantPublicKey = publicKey("wechatpay-merchant-public.pem")
        let platformPrivateKey = privateKey("wechatpay-platform-private.pem")
        let appPublicKey = publicKey("alipay-app-public.pem")
        let alipayPrivateKey = privateKey("alipay-private.pem")
        if environment["PAYNOTIFY_WECHATPAY_PLATFORM_KEYS"]?.isEmpty == false, platformSerial?.isEmpty != false {
            problems.append("PAYNOTIFY_WECHATPAY_PLATFORM_KEYS must be SERIAL=path,…")
        }
        guard problems.isEmpty, let merchantPublicKey, let platformPrivateKey, let appPublicKey, let alipayPrivateKey,
            let platformSerial
        else { throw SettingsError(problems: problems) }
        self.init(
            host: host,
            port: port,
            webhookBaseURL: webhookBaseURL,
            wechatPay: .init(
                merchantID: merchantID,
                merchantPublicKey: merchantPublicKey,
                platformPrivateKey: platformPrivateKey,
                platformSerial: platformSerial,
                apiV3Key: apiV3Key
            ),
            alipay: .init(appID: appID, appPublicKey: appPublicKey, alipayPrivateKey: alipayPrivateKey),
            stripe: .init(secretKey: stripeKey, webhookSecret: stripeSecret),
            closeMinimumAge: closeMinimumAge
        )
    }
}
