import Foundation
public import Logging
import PaymentProviders
public import Postgres

/// Everything the service reads at start, from environment variables (and command-line flags, which
/// the command merges in under the same names). Validated once: a bad value stops the process with
/// a message naming the setting.
///
/// - Configuration keys:
///   - `DATABASE_URL` (required): a `postgres://` URL or libpq connection string.
///   - `PAYNOTIFY_HOST`: address to bind. Default `127.0.0.1`.
///   - `PAYNOTIFY_PORT`: port to bind, `0` for any free one. Default `8080`.
///   - `PAYNOTIFY_DB_POOL_SIZE`: most database connections open at once. Default `10`.
///   - `PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a free connection. Default `5000`.
///   - `PAYNOTIFY_MIGRATIONS_DIR`: where the `NNNN_name.sql` files are. Default `migrations`.
///   - `PAYNOTIFY_MIGRATE_ON_START`: apply pending migrations before serving. Default `true`.
///   - `PAYNOTIFY_LOG_LEVEL`: `trace` … `critical`. Default `info`.
///   - `PAYNOTIFY_LOG_FORMAT`: `text`, or `json` for one JSON object a line. Default `text`.
///   - `PAYNOTIFY_API_KEYS` (required): merchant API keys, comma-separated (several for rotation), 16+ characters each.
///   - `PAYNOTIFY_STREAM_SECRET` (required): the key of the stream tokens, 32+ characters.
///   - `PAYNOTIFY_WEBHOOK_TOLERANCE_SECONDS`: how far a signed webhook timestamp may be from now. Default `300`.
///   - `PAYNOTIFY_SANDBOX_SECRETS`, `PAYNOTIFY_STRIPE_SECRETS`: webhook secrets, comma-separated; a
///     provider without secrets is not served.
///   - `PAYNOTIFY_WECHATPAY_PLATFORM_KEYS` (`SERIAL=path/to/pem`, comma-separated: certificates or
///     public keys) with `PAYNOTIFY_WECHATPAY_APIV3_KEY` (32 characters): both or neither.
///   - `PAYNOTIFY_ALIPAY_PUBLIC_KEY` (PEM or bare base64 text, or a path to a file holding it) with
///     `PAYNOTIFY_ALIPAY_APP_ID`: both or neither.
///   - `PAYNOTIFY_MAX_BODY_BYTES`: the largest request body read. Default `65536`.
///   - `PAYNOTIFY_EXPIRY_SWEEP_SECONDS`: how often pending orders past their deadline expire. Default `5`.
///   - `PAYNOTIFY_ALLOWED_ORIGINS`: origins whose pages may open streams (CORS), comma-separated, or `*`.
///     Default none (same-origin pages only).
///   - `PAYNOTIFY_HEARTBEAT_SECONDS`: a `: keepalive` comment after this much silence on a stream. Default `15`.
///   - `PAYNOTIFY_RECOVERY_SECONDS`: how often every watched order's log is re-read, so an event whose
///     notification was lost still arrives. Default `5`.
///   - `PAYNOTIFY_IDLE_TIMEOUT_SECONDS`: a connection that sends no request (or only part of its
///     headers) for this long is closed; a stream being answered is never idle. Default `30`.
///   - `PAYNOTIFY_SHUTDOWN_GRACE_SECONDS`: after SIGTERM, in-flight requests get this long to finish
///     before the process stops them and exits. Default `10`.
///   - `PAYNOTIFY_STREAM_MAX_SECONDS`: a stream ends after this long; the client resumes. Default `3600`.
///   - `PAYNOTIFY_STREAM_RETRY_MS`: the `retry:` a stream opens with. Default `3000`.
///   - `PAYNOTIFY_STREAM_BUFFER`: events held for a stream while it replays, before it is dropped. Default `64`.
///   - `PAYNOTIFY_MAX_STREAMS`: open order streams per instance. Default `10000`.
///   - `PAYNOTIFY_MAX_STREAMS_PER_IP`: open streams per client address. Default `200`.
///   - `PAYNOTIFY_MAX_STREAMS_PER_ORDER`: open streams per order. Default `8`.
///   - `PAYNOTIFY_TRUSTED_PROXIES`: addresses or CIDR ranges (comma-separated) whose
///     `X-Forwarded-For` is believed. Default none.
///   - `PAYNOTIFY_ADMIN_TOKEN`: the ops stream's token, 16+ characters; unset disables the ops stream.
///   - `PAYNOTIFY_DEMO`: serve the checkout demo's endpoints (`/demo/…`), which create sandbox orders
///     and sign sandbox deliveries. Development only; needs `PAYNOTIFY_SANDBOX_SECRETS`. Default `false`.
public struct AppConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: ConnectionConfiguration
    public var poolSize: Int
    public var acquireTimeout: Duration
    public var migrationsDirectory: String
    public var migrateOnStart: Bool
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var apiKeys: [String]
    public var streamSecret: String
    public var webhookTolerance: Int
    public var sandboxSecrets: [String]
    public var stripeSecrets: [String]
    /// Serial → PEM text (certificate or public key), read from the configured files.
    public var wechatPayPlatformKeys: [String: String]
    public var wechatPayAPIv3Key: String?
    public var alipayPublicKey: String?
    public var alipayAppID: String?
    public var maximumBodyBytes: Int
    public var expirySweepInterval: Duration
    public var allowedOrigins: AllowedOrigins
    public var heartbeat: Duration
    public var recoveryInterval: Duration
    public var idleTimeout: Duration
    public var shutdownGrace: Duration
    public var streamMaximumAge: Duration
    public var streamRetry: Duration
    public var streamBufferSize: Int
    public var maximumStreams: Int
    public var maximumStreamsPerAddress: Int
    public var maximumStreamsPerOrder: Int
    public var trustedProxies: [IPAddressRange]
    public var adminToken: String?
    public var demo: Bool

    /// Reads and validates the configuration.
    ///
    /// - Throws: ``ConfigurationError`` naming the first setting that is missing or invalid.
    public init(environment: [String: String]) throws(ConfigurationError) {
        let reader = SettingsReader(environment: environment)
        guard let databaseURL = reader.string("DATABASE_URL") else {
            throw ConfigurationError(
                setting: "DATABASE_URL",
                message:
                    "is not set; give a postgres:// URL or a libpq connection string (`make run` starts a local database and sets it)"
            )
        }
        do {
            self.database = try ConnectionConfiguration(databaseURL)
        } catch {
            // libpq's message quotes the offending part, which can be the password: say what to
            // check, never what was given.
            throw ConfigurationError(
                setting: "DATABASE_URL",
                message: "is not a valid connection string or URL; check its host, port, user and percent-encoding"
            )
        }
        self.host = reader.string("PAYNOTIFY_HOST") ?? "127.0.0.1"
        self.port = try reader.integer("PAYNOTIFY_PORT", default: 8080, in: 0...65535)
        self.poolSize = try reader.integer("PAYNOTIFY_DB_POOL_SIZE", default: 10, in: 1...1000)
        self.acquireTimeout = .milliseconds(
            try reader.integer("PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS", default: 5000, in: 1...600_000)
        )
        self.migrationsDirectory = reader.string("PAYNOTIFY_MIGRATIONS_DIR") ?? "migrations"
        self.migrateOnStart = try reader.boolean("PAYNOTIFY_MIGRATE_ON_START", default: true)
        self.logLevel = try reader.choice("PAYNOTIFY_LOG_LEVEL", default: .info)
        self.logFormat = try reader.choice("PAYNOTIFY_LOG_FORMAT", default: .text)
        self.apiKeys = try reader.secrets("PAYNOTIFY_API_KEYS", minimumLength: 16, required: true)
        guard let streamSecret = reader.string("PAYNOTIFY_STREAM_SECRET") else {
            throw ConfigurationError(
                setting: "PAYNOTIFY_STREAM_SECRET",
                message: "is not set; give at least 32 random characters"
            )
        }
        guard streamSecret.count >= 32 else {
            throw ConfigurationError(
                setting: "PAYNOTIFY_STREAM_SECRET",
                message: "is too short; give at least 32 random characters"
            )
        }
        self.streamSecret = streamSecret
        self.webhookTolerance = try reader.integer("PAYNOTIFY_WEBHOOK_TOLERANCE_SECONDS", default: 300, in: 1...86_400)
        self.sandboxSecrets = try reader.secrets("PAYNOTIFY_SANDBOX_SECRETS", minimumLength: 8, required: false)
        self.stripeSecrets = try reader.secrets("PAYNOTIFY_STRIPE_SECRETS", minimumLength: 8, required: false)
        (self.wechatPayPlatformKeys, self.wechatPayAPIv3Key) = try Self.wechatPay(reader)
        (self.alipayPublicKey, self.alipayAppID) = try Self.alipay(reader)
        self.maximumBodyBytes = try reader.integer("PAYNOTIFY_MAX_BODY_BYTES", default: 65_536, in: 1024...10_485_760)
        self.expirySweepInterval = .seconds(
            try reader.integer("PAYNOTIFY_EXPIRY_SWEEP_SECONDS", default: 5, in: 1...3600)
        )
        self.allowedOrigins = try Self.allowedOrigins(reader)
        self.heartbeat = .seconds(try reader.integer("PAYNOTIFY_HEARTBEAT_SECONDS", default: 15, in: 1...300))
        self.recoveryInterval = .seconds(try reader.integer("PAYNOTIFY_RECOVERY_SECONDS", default: 5, in: 1...300))
        self.idleTimeout = .seconds(try reader.integer("PAYNOTIFY_IDLE_TIMEOUT_SECONDS", default: 30, in: 1...3600))
        self.shutdownGrace = .seconds(try reader.integer("PAYNOTIFY_SHUTDOWN_GRACE_SECONDS", default: 10, in: 1...600))
        self.streamMaximumAge = .seconds(
            try reader.integer("PAYNOTIFY_STREAM_MAX_SECONDS", default: 3600, in: 5...86_400)
        )
        self.streamRetry = .milliseconds(
            try reader.integer("PAYNOTIFY_STREAM_RETRY_MS", default: 3000, in: 100...600_000)
        )
        self.streamBufferSize = try reader.integer("PAYNOTIFY_STREAM_BUFFER", default: 64, in: 4...100_000)
        self.maximumStreams = try reader.integer("PAYNOTIFY_MAX_STREAMS", default: 10_000, in: 1...1_000_000)
        self.maximumStreamsPerAddress = try reader.integer(
            "PAYNOTIFY_MAX_STREAMS_PER_IP",
            default: 200,
            in: 1...1_000_000
        )
        self.maximumStreamsPerOrder = try reader.integer("PAYNOTIFY_MAX_STREAMS_PER_ORDER", default: 8, in: 1...10_000)
        self.trustedProxies = try Self.trustedProxies(reader)
        self.adminToken = try reader.secrets("PAYNOTIFY_ADMIN_TOKEN", minimumLength: 16, required: false).first
        self.demo = try reader.boolean("PAYNOTIFY_DEMO", default: false)
        if self.demo && self.sandboxSecrets.isEmpty {
            throw ConfigurationError(
                setting: "PAYNOTIFY_DEMO",
                message: "needs the sandbox provider: set PAYNOTIFY_SANDBOX_SECRETS too (development only)"
            )
        }
    }
}

extension AppConfiguration {
    fileprivate static func allowedOrigins(_ reader: SettingsReader) throws(ConfigurationError) -> AllowedOrigins {
        let setting = "PAYNOTIFY_ALLOWED_ORIGINS"
        let values = reader.list(setting)
        if values == ["*"] { return .any }
        for origin in values {
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host != nil, url.path.isEmpty, url.query == nil
            else {
                throw ConfigurationError(
                    setting: setting,
                    message: "entry \"\(origin)\" is not an origin such as https://shop.example.com (or give * alone)"
                )
            }
        }
        return .only(Set(values))
    }

    fileprivate static func trustedProxies(_ reader: SettingsReader) throws(ConfigurationError) -> [IPAddressRange] {
        let setting = "PAYNOTIFY_TRUSTED_PROXIES"
        var ranges: [IPAddressRange] = []
        for entry in reader.list(setting) {
            guard let range = IPAddressRange(entry) else {
                throw ConfigurationError(
                    setting: setting,
                    message: "entry \"\(entry)\" is not an IP address or CIDR range such as 10.0.0.0/8"
                )
            }
            ranges.append(range)
        }
        return ranges
    }
}

extension AppConfiguration {
    /// The WeChat Pay keys, read and checked: each file must hold a key the adapter accepts.
    fileprivate static func wechatPay(_ reader: SettingsReader) throws(ConfigurationError) -> (
        [String: String], String?
    ) {
        let keysSetting = "PAYNOTIFY_WECHATPAY_PLATFORM_KEYS"
        let apiKeySetting = "PAYNOTIFY_WECHATPAY_APIV3_KEY"
        let entries = reader.list(keysSetting)
        let apiV3Key = reader.string(apiKeySetting)
        guard !entries.isEmpty || apiV3Key != nil else { return ([:], nil) }
        guard !entries.isEmpty else {
            throw ConfigurationError(setting: keysSetting, message: "is not set, but \(apiKeySetting) is")
        }
        guard let apiV3Key else {
            throw ConfigurationError(setting: apiKeySetting, message: "is not set, but \(keysSetting) is")
        }
        guard apiV3Key.utf8.count == 32 else {
            throw ConfigurationError(
                setting: apiKeySetting,
                message: "must be the 32-character APIv3 key from the merchant platform"
            )
        }
        var keys: [String: String] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(setting: keysSetting, message: "entry \"\(entry)\" is not SERIAL=path/to/pem")
            }
            keys[parts[0]] = try Self.readFile(parts[1], setting: keysSetting)
        }
        do {
            _ = try WeChatPayAdapter(platformKeyTexts: keys, apiV3Key: apiV3Key, tolerance: 300)
        } catch {
            throw ConfigurationError(setting: keysSetting, message: "holds a key that cannot be used: \(error)")
        }
        return (keys, apiV3Key)
    }

    /// The Alipay public key (text, or a file holding it) and app id, checked.
    fileprivate static func alipay(_ reader: SettingsReader) throws(ConfigurationError) -> (String?, String?) {
        let keySetting = "PAYNOTIFY_ALIPAY_PUBLIC_KEY"
        let appSetting = "PAYNOTIFY_ALIPAY_APP_ID"
        let value = reader.string(keySetting)
        let appID = reader.string(appSetting)
        guard value != nil || appID != nil else { return (nil, nil) }
        guard let value else {
            throw ConfigurationError(setting: keySetting, message: "is not set, but \(appSetting) is")
        }
        guard let appID else {
            throw ConfigurationError(setting: appSetting, message: "is not set, but \(keySetting) is")
        }
        // Key text is PEM or bare base64 (an RSA-2048 key is ~390 characters, and may hold "/"): a
        // value is a path only when it does not look like key text, and then the file must exist.
        let looksLikeKeyText = value.hasPrefix("-----BEGIN") || (value.count > 200 && !value.hasSuffix(".pem"))
        let text = looksLikeKeyText ? value : try Self.readFile(value, setting: keySetting)
        do {
            _ = try AlipayAdapter(publicKeyTexts: [text], appID: appID, tolerance: nil)
        } catch {
            throw ConfigurationError(setting: keySetting, message: "is not a usable RSA public key: \(error)")
        }
        return (text, appID)
    }

    private static func readFile(_ path: String, setting: String) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigurationError(setting: setting, message: "names \(path), which cannot be read")
        }
        return text
    }
}

/// How log records are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's default: one readable line a record.
    case text
    /// One JSON object a line (``JSONLogHandler``).
    case json
}

/// A setting that is missing or invalid; the message names it and never repeats a secret's value.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let setting: String
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(self.setting) \(self.message)" }
}

/// Typed reads of settings; empty values count as unset.
struct SettingsReader {
    let environment: [String: String]

    func string(_ name: String) -> String? {
        guard let value = self.environment[name], !value.isEmpty else { return nil }
        return value
    }

    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError)
        -> Int
    {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                setting: name,
                message: "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\""
            )
        }
        return value
    }

    func boolean(_ name: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let text = self.string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(setting: name, message: "must be true or false, not \"\(text)\"")
        }
    }

    /// A comma-separated list, entries trimmed, empty entries dropped.
    func list(_ name: String) -> [String] {
        (self.string(name) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// A comma-separated list of secrets; the message never repeats one.
    func secrets(_ name: String, minimumLength: Int, required: Bool) throws(ConfigurationError) -> [String] {
        let values = self.list(name)
        if values.isEmpty && required {
            throw ConfigurationError(setting: name, message: "is not set; give one or more comma-separated values")
        }
        if let short = values.firstIndex(where: { $0.count < minimumLength }) {
            throw ConfigurationError(
                setting: name,
                message: "value #\(short + 1) is shorter than \(minimumLength) characters"
            )
        }
        return values
    }

    /// One of an enumeration's raw values (case-insensitive).
    func choice<T: RawRepresentable & CaseIterable>(_ name: String, default defaultValue: T) throws(ConfigurationError)
        -> T where T.RawValue == String
    {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = T(rawValue: text.lowercased()) else {
            let values = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(setting: name, message: "must be one of \(values), not \"\(text)\"")
        }
        return value
    }
}
