import Foundation
public import Logging
public import MerchantWebhooks
public import NetworkAddresses
import Payments
public import Postgres
public import SSEGateway

/// Everything the service reads at start, from environment variables (and command-line flags, which
/// the command merges in under the same names), in sections. Read once and checked whole: a
/// configuration with bad settings is refused with every one of them named
/// (``ConfigurationErrors``), and the command exits 78.
///
/// - Configuration keys:
///   - `DATABASE_URL` (required): a `postgres://` URL or libpq connection string. Several hosts
///     (`host=a,b port=5432,5432 target_session_attrs=read-write`) reach whichever is the primary.
///   - `PAYNOTIFY_LISTEN_DATABASE_URL`: the listener's connection, when `DATABASE_URL` goes through
///     a pooler in transaction mode: a direct or session-mode address, as `LISTEN` needs a session.
///     Default `DATABASE_URL`.
///   - `PAYNOTIFY_DB_PREPARED_STATEMENTS`: `auto` (prepared unless a pooler is detected between the
///     service and PostgreSQL), `true` or `false`. Default `auto`.
///   - Secrets can be given as files instead: `DATABASE_URL_FILE`, `PAYNOTIFY_STREAM_SECRET_FILE`
///     and so on (``SecretFiles/settings``), as container platforms mount them.
///   - `PAYNOTIFY_HOST`: address to bind. Default `127.0.0.1`.
///   - `PAYNOTIFY_PORT`: port to bind, `0` for any free one. Default `8080`.
///   - `PAYNOTIFY_DB_POOL_SIZE`: most database connections open at once. Default `10`.
///   - `PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a free connection. Default `5000`.
///   - `PAYNOTIFY_MIGRATIONS_DIR`: read the `NNNN_name.sql` files from this directory instead of
///     the ones built into the binary.
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
///   - Reconciliation (asking providers when a callback does not come, closing at expiry): with
///     WeChat Pay's webhook keys, `PAYNOTIFY_WECHATPAY_MCHID`, `PAYNOTIFY_WECHATPAY_MERCHANT_SERIAL` and
///     `PAYNOTIFY_WECHATPAY_MERCHANT_KEY` (a PEM path), all or none, and `PAYNOTIFY_WECHATPAY_API_URL`;
///     with Alipay's, `PAYNOTIFY_ALIPAY_APP_PRIVATE_KEY` (a PEM path) and `PAYNOTIFY_ALIPAY_GATEWAY_URL`;
///     `PAYNOTIFY_STRIPE_API_KEY` and `PAYNOTIFY_STRIPE_API_URL`. API URLs are `https`, or `http` to a
///     loopback host. `PAYNOTIFY_{WECHATPAY,ALIPAY,STRIPE}_RATE_LIMIT`: requests a second. Default `20`.
///   - `PAYNOTIFY_RECONCILE_AFTER`: when open orders are asked about, after creation. Default
///     `1m,2m,5m,10m,20m,30m`; then every `PAYNOTIFY_RECONCILE_EVERY` (default `30m`).
///   - `PAYNOTIFY_CLOSE_GIVE_UP`: closing at the provider is tried this long before the order is
///     expired or canceled anyway, with a `close_failed` alert. Default `30m`.
///   - `PAYNOTIFY_WECHATPAY_CLOSE_AFTER`: how soon after creation WeChat Pay accepts a close. Default `5m`.
///   - `PAYNOTIFY_MAX_BODY_BYTES`: the largest request body read. Default `65536`.
///   - `PAYNOTIFY_EXPIRY_SWEEP_SECONDS`: how often pending orders past their deadline expire. Default `5`.
///   - `PAYNOTIFY_ALLOWED_ORIGINS`: origins whose pages may open streams (CORS), comma-separated, or `*`.
///     Default none (same-origin pages only).
///   - `PAYNOTIFY_HEARTBEAT_SECONDS`: a `: keepalive` comment after this much silence on a stream. Default `15`.
///   - `PAYNOTIFY_RECOVERY_SECONDS`: how often every watched order's log is re-read, so an event whose
///     notification was lost still arrives. Default `5`.
///   - `PAYNOTIFY_IDLE_TIMEOUT_SECONDS`: a connection that sends no request (or only part of its
///     headers) for this long is closed; a stream being answered is never idle, but its client has
///     this long to take its snapshot and replay. Default `30`.
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
///   - `PAYNOTIFY_ALLOW_HTTP_WEBHOOKS`: merchant webhook endpoints may be `http://` to a loopback
///     host (development). Default `false`: `https` only.
///   - `PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS`: addresses or CIDR ranges (comma-separated) merchant
///     webhooks may reach although they are loopback, private or link-local. Default none.
///   - `PAYNOTIFY_WEBHOOK_RETRY_SCHEDULE`: when a message's attempts happen, the first (at once)
///     then after each failure, such as the default `0s,5s,5m,30m,2h,5h,10h,10h`.
///   - `PAYNOTIFY_WEBHOOK_TIMEOUT_SECONDS`: an attempt without a whole answer by then failed. Default `15`.
///   - `PAYNOTIFY_WEBHOOK_ENDPOINT_CONCURRENCY`: attempts in flight to one endpoint, per instance. Default `16`.
///   - `PAYNOTIFY_WEBHOOK_MAX_IN_FLIGHT`: attempts in flight per instance. Default `256`.
///   - `PAYNOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS`: an endpoint that failed everything this long (and
///     at least 12 hours) is disabled. Default `432000` (5 days).
///   - `PAYNOTIFY_WEBHOOK_CA_FILE`: a PEM file of certificate authorities trusted for merchant
///     endpoints beside the system's (a private CA). Default none.
///   - `PAYNOTIFY_DEMO_EMULATOR_URL`: the provider emulator's origin as the demo page's browser
///     reaches it; the page then offers "Pay, but lose the callback" (WeChat Pay, reconciled). Default none.
///   - `PAYNOTIFY_DEMO`: serve the checkout demo's endpoints (`/demo/…`), which create sandbox orders
///     and sign sandbox deliveries. Development only; needs `PAYNOTIFY_SANDBOX_SECRETS`. Default `false`.
public struct AppConfiguration: Sendable {
    /// The HTTP server.
    public struct HTTP: Sendable {
        public var host: String
        public var port: Int
        /// How long a connection may send nothing (and a stream's client take its replay).
        public var idleTimeout: Duration
        /// After SIGTERM, how long in-flight requests have before they are stopped.
        public var shutdownGrace: Duration
        public var maximumBodyBytes: Int
    }

    /// The database and its schema.
    public struct Database: Sendable {
        public var connection: ConnectionConfiguration
        /// The listener's: `LISTEN` needs a session of its own, so not a pooler in transaction mode.
        public var listenConnection: ConnectionConfiguration
        public var poolSize: Int
        public var acquireTimeout: Duration
        /// Where the migrations are read from; `nil` for those built into the binary.
        public var migrationsDirectory: String?
        public var migrateOnStart: Bool
    }

    /// What streams are held to.
    public struct Streams: Sendable {
        /// The `retry:` a stream opens with.
        public var retry: Duration
        public var policy: StreamPolicy
        /// How often every watched order's log is re-read.
        public var recoveryInterval: Duration
    }

    /// Who may do what.
    public struct Security: Sendable {
        public var apiKeys: [String]
        public var streamSecret: String
        /// The ops stream's token; `nil` disables the ops stream.
        public var adminToken: String?
        public var allowedOrigins: AllowedOrigins
        public var trustedProxies: [IPAddressRange]
    }

    /// Webhooks to the merchant's backend.
    public struct MerchantWebhooks: Sendable {
        public var allowHTTP: Bool
        public var allowedAddresses: [IPAddressRange]
        public var schedule: RetrySchedule
        public var timeout: Duration
        public var perEndpoint: Int
        public var maximumInFlight: Int
        public var disableAfter: Duration
        public var trustRoots: [String]
    }

    public struct Log: Sendable {
        public var level: Logger.Level
        public var format: LogFormat
    }

    public var http: HTTP
    public var database: Database
    public var streams: Streams
    public var limits: StreamLimits
    public var security: Security
    public var providers: Providers
    public var reconciliation: Reconciliation
    public var merchantWebhooks: MerchantWebhooks
    public var log: Log
    /// How often pending orders past their deadline expire.
    public var expirySweepInterval: Duration
    /// Serve the checkout demo's endpoints (development only).
    public var demo: Bool
    /// The provider emulator as the demo page's browser reaches it: the page pays there and
    /// loses the callback, to show reconciliation (development only).
    public var demoEmulatorURL: String?

    /// Reads and checks the configuration.
    ///
    /// - Throws: ``ConfigurationErrors`` naming every setting that is missing or invalid.
    public init(environment: [String: String]) throws(ConfigurationErrors) {
        let reader = SettingsReader(environment: environment)
        self.http = HTTP(
            host: reader.string("PAYNOTIFY_HOST") ?? "127.0.0.1",
            port: reader.integer("PAYNOTIFY_PORT", default: 8080, in: 0...65535),
            idleTimeout: reader.seconds("PAYNOTIFY_IDLE_TIMEOUT_SECONDS", default: 30, in: 1...3600),
            shutdownGrace: reader.seconds("PAYNOTIFY_SHUTDOWN_GRACE_SECONDS", default: 10, in: 1...600),
            maximumBodyBytes: reader.integer("PAYNOTIFY_MAX_BODY_BYTES", default: 65_536, in: 1024...10_485_760)
        )
        let preparedStatements = reader.choice(
            "PAYNOTIFY_DB_PREPARED_STATEMENTS",
            default: ConnectionConfiguration.PreparedStatements.automatic
        )
        var connection = Self.databaseURL(reader, "DATABASE_URL")
        var listenConnection =
            reader.string("PAYNOTIFY_LISTEN_DATABASE_URL") == nil
            ? connection : Self.databaseURL(reader, "PAYNOTIFY_LISTEN_DATABASE_URL")
        connection.preparedStatements = preparedStatements
        listenConnection.preparedStatements = preparedStatements
        self.database = Database(
            connection: connection,
            listenConnection: listenConnection,
            poolSize: reader.integer("PAYNOTIFY_DB_POOL_SIZE", default: 10, in: 1...1000),
            acquireTimeout: reader.milliseconds("PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS", default: 5000, in: 1...600_000),
            migrationsDirectory: reader.string("PAYNOTIFY_MIGRATIONS_DIR"),
            migrateOnStart: reader.boolean("PAYNOTIFY_MIGRATE_ON_START", default: true)
        )
        self.streams = Streams(
            retry: reader.milliseconds("PAYNOTIFY_STREAM_RETRY_MS", default: 3000, in: 100...600_000),
            policy: StreamPolicy(
                bufferSize: reader.integer("PAYNOTIFY_STREAM_BUFFER", default: 64, in: 4...100_000),
                heartbeat: reader.seconds("PAYNOTIFY_HEARTBEAT_SECONDS", default: 15, in: 1...300),
                maximumAge: reader.seconds("PAYNOTIFY_STREAM_MAX_SECONDS", default: 3600, in: 5...86_400)
            ),
            recoveryInterval: reader.seconds("PAYNOTIFY_RECOVERY_SECONDS", default: 5, in: 1...300)
        )
        self.limits = StreamLimits(
            total: reader.integer("PAYNOTIFY_MAX_STREAMS", default: 10_000, in: 1...1_000_000),
            perAddress: reader.integer("PAYNOTIFY_MAX_STREAMS_PER_IP", default: 200, in: 1...1_000_000),
            perOrder: reader.integer("PAYNOTIFY_MAX_STREAMS_PER_ORDER", default: 8, in: 1...10_000)
        )
        self.security = Security(
            apiKeys: reader.secrets("PAYNOTIFY_API_KEYS", minimumLength: 16, required: true),
            streamSecret: Self.streamSecret(reader),
            adminToken: reader.secrets("PAYNOTIFY_ADMIN_TOKEN", minimumLength: 16, required: false).first,
            allowedOrigins: Self.allowedOrigins(reader),
            trustedProxies: Self.ranges(reader, "PAYNOTIFY_TRUSTED_PROXIES")
        )
        self.providers = Providers(reader)
        self.reconciliation = Reconciliation(reader, providers: self.providers)
        self.merchantWebhooks = Self.merchantWebhooks(reader)
        self.log = Log(
            level: reader.choice("PAYNOTIFY_LOG_LEVEL", default: .info),
            format: reader.choice("PAYNOTIFY_LOG_FORMAT", default: .text)
        )
        self.expirySweepInterval = reader.seconds("PAYNOTIFY_EXPIRY_SWEEP_SECONDS", default: 5, in: 1...3600)
        self.demo = reader.boolean("PAYNOTIFY_DEMO", default: false)
        self.demoEmulatorURL = Self.origin(reader, "PAYNOTIFY_DEMO_EMULATOR_URL")
        if self.demoEmulatorURL != nil && !self.reconciliation.providers.contains(.wechatpay) {
            reader.refuse(
                "PAYNOTIFY_DEMO_EMULATOR_URL",
                "needs WeChat Pay reconciled (PAYNOTIFY_WECHATPAY_MCHID and the rest): the demo pays with it"
            )
        }
        if self.demo && self.providers.sandboxSecrets.isEmpty {
            reader.refuse(
                "PAYNOTIFY_DEMO",
                "needs the sandbox provider: set PAYNOTIFY_SANDBOX_SECRETS too (development only)"
            )
        }
        try reader.finish()
    }
}

extension AppConfiguration {
    private static func databaseURL(_ reader: SettingsReader, _ setting: String) -> ConnectionConfiguration {
        // Never used: the configuration is refused whenever this stands in.
        let unusable = try! ConnectionConfiguration("")
        guard let url = reader.string(setting) else {
            reader.refuse(
                setting,
                "is not set; give a postgres:// URL or a libpq connection string (`make run` starts a local database and sets it)"
            )
            return unusable
        }
        do {
            return try ConnectionConfiguration(url)
        } catch {
            // libpq's message quotes the offending part, which can be the password: say what to
            // check, never what was given.
            reader.refuse(
                setting,
                "is not a valid connection string or URL; check its host, port, user and percent-encoding"
            )
            return unusable
        }
    }

    private static func streamSecret(_ reader: SettingsReader) -> String {
        let setting = "PAYNOTIFY_STREAM_SECRET"
        guard let secret = reader.string(setting) else {
            reader.refuse(setting, "is not set; give at least 32 random characters")
            return ""
        }
        guard secret.count >= 32 else {
            reader.refuse(setting, "is too short; give at least 32 random characters")
            return ""
        }
        return secret
    }

    /// An origin (`http://127.0.0.1:8090`), or `nil` and a refusal.
    private static func origin(_ reader: SettingsReader, _ setting: String) -> String? {
        guard let text = reader.string(setting) else { return nil }
        guard Self.isOrigin(text) else {
            reader.refuse(setting, "is not an origin such as http://127.0.0.1:8090")
            return nil
        }
        return text
    }

    /// Whether `text` is a web origin: `http` or `https`, a host, maybe a port, and nothing after.
    private static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme else { return false }
        return ["http", "https"].contains(scheme) && url.host != nil && url.path.isEmpty && url.query == nil
    }

    private static func allowedOrigins(_ reader: SettingsReader) -> AllowedOrigins {
        let setting = "PAYNOTIFY_ALLOWED_ORIGINS"
        let values = reader.list(setting)
        if values == ["*"] { return .any }
        for origin in values where !Self.isOrigin(origin) {
            reader.refuse(
                setting,
                "entry \"\(origin)\" is not an origin such as https://shop.example.com (or give * alone)"
            )
            return .only([])
        }
        return .only(Set(values))
    }

    private static func merchantWebhooks(_ reader: SettingsReader) -> MerchantWebhooks {
        let scheduleSetting = "PAYNOTIFY_WEBHOOK_RETRY_SCHEDULE"
        var schedule = RetrySchedule.standard
        if let text = reader.string(scheduleSetting) {
            if let parsed = RetrySchedule(parsing: text) {
                schedule = parsed
            } else {
                reader.refuse(scheduleSetting, "is not a list of durations such as 0s,5s,5m,30m,2h,5h,10h,10h")
            }
        }
        let caSetting = "PAYNOTIFY_WEBHOOK_CA_FILE"
        let trustRoots = reader.string(caSetting).map { [$0] } ?? []
        for path in trustRoots where !FileManager.default.isReadableFile(atPath: path) {
            reader.refuse(caSetting, "names a file that cannot be read")
        }
        return MerchantWebhooks(
            allowHTTP: reader.boolean("PAYNOTIFY_ALLOW_HTTP_WEBHOOKS", default: false),
            allowedAddresses: Self.ranges(reader, "PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS"),
            schedule: schedule,
            timeout: reader.seconds("PAYNOTIFY_WEBHOOK_TIMEOUT_SECONDS", default: 15, in: 1...60),
            perEndpoint: reader.integer("PAYNOTIFY_WEBHOOK_ENDPOINT_CONCURRENCY", default: 16, in: 1...100),
            maximumInFlight: reader.integer("PAYNOTIFY_WEBHOOK_MAX_IN_FLIGHT", default: 256, in: 1...10_000),
            disableAfter: reader.seconds(
                "PAYNOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS",
                default: 432_000,
                in: 60...31_536_000
            ),
            trustRoots: trustRoots
        )
    }

    private static func ranges(_ reader: SettingsReader, _ setting: String) -> [IPAddressRange] {
        var ranges: [IPAddressRange] = []
        for entry in reader.list(setting) {
            guard let range = IPAddressRange(entry) else {
                reader.refuse(setting, "entry \"\(entry)\" is not an IP address or CIDR range such as 10.0.0.0/8")
                return []
            }
            ranges.append(range)
        }
        return ranges
    }
}

/// How log records are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's default: one readable line a record.
    case text
    /// One JSON object a line (``JSONLogHandler``).
    case json
}
