import Foundation
import PayNotify
import PaymentProviders
import Payments
import TestSupport
import Testing
import _CryptoExtras

@Suite("AppConfiguration")
struct ConfigurationTests {
    private let valid = [
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paynotify",
        "PAYNOTIFY_API_KEYS": "merchant-key-0123456789",
        "PAYNOTIFY_STREAM_SECRET": String(repeating: "s", count: 32),
    ]

    /// Defaults apply when only the database is given.
    @Test func defaults() throws {
        let configuration = try AppConfiguration(environment: self.valid)
        #expect(configuration.http.host == "127.0.0.1")
        #expect(configuration.http.port == 8080)
        #expect(configuration.database.poolSize == 10)
        #expect(configuration.database.acquireTimeout == .seconds(5))
        #expect(configuration.database.migrateOnStart)
        #expect(configuration.database.migrationsDirectory == nil)
        #expect(configuration.providers.adapters.isEmpty)
    }

    /// A missing database URL is refused, naming DATABASE_URL.
    @Test func missingDatabaseURLIsNamed() {
        var environment = self.valid
        environment["DATABASE_URL"] = nil
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == ["DATABASE_URL"])
    }

    /// A bad URL is refused, naming DATABASE_URL, without repeating the password.
    @Test func badDatabaseURLIsNamedWithoutItsSecret() {
        var environment = self.valid
        environment["DATABASE_URL"] = "postgres://payer:hunter2-secret@db:notaport/pay"
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == ["DATABASE_URL"])
        #expect(error.map { !"\($0)".contains("hunter2-secret") } ?? false)
    }

    /// Each invalid value names its own variable.
    @Test(arguments: [
        ("PAYNOTIFY_PORT", "eighty"), ("PAYNOTIFY_PORT", "70000"), ("PAYNOTIFY_DB_POOL_SIZE", "0"),
        ("PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS", "-5"), ("PAYNOTIFY_MIGRATE_ON_START", "maybe"),
        ("PAYNOTIFY_LOG_LEVEL", "loud"),
    ])
    func invalidValuesAreNamed(setting: String, value: String) {
        var environment = self.valid
        environment[setting] = value
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == [setting])
        #expect(error?.errors.first?.message.contains(value) == true)
    }

    /// Secrets can come from files, as Docker and Kubernetes mount them: the value is the file's
    /// text less the line break `echo` leaves.
    @Test func secretsAreReadFromFiles() throws {
        let directory = try TemporaryDirectory()
        var environment = self.valid
        for (setting, value) in [
            ("DATABASE_URL", "postgres://payer:from-a-file@127.0.0.1:5433/paynotify"),
            ("PAYNOTIFY_API_KEYS", "file-key-0123456789,file-key-9876543210"),
            ("PAYNOTIFY_STREAM_SECRET", String(repeating: "f", count: 40)),
            ("PAYNOTIFY_ADMIN_TOKEN", "admin-token-from-a-file"),
        ] {
            environment[setting] = nil
            environment[setting + "_FILE"] = try directory.write(setting, contents: value + "\n")
        }
        let configuration = try AppConfiguration(environment: environment)
        #expect(configuration.security.apiKeys == ["file-key-0123456789", "file-key-9876543210"])
        #expect(configuration.security.streamSecret == String(repeating: "f", count: 40))
        #expect(configuration.security.adminToken == "admin-token-from-a-file")
        #expect("\(configuration.database.connection)".contains("user=payer"))
        #expect("\(configuration.database.connection)".contains("port=5433"))
    }

    /// Both forms of one secret is an error naming both; neither wins silently.
    @Test func bothFormsAreRefused() throws {
        let directory = try TemporaryDirectory()
        var environment = self.valid
        environment["PAYNOTIFY_STREAM_SECRET_FILE"] = try directory.write(
            "stream",
            contents: String(repeating: "x", count: 32)
        )
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == ["PAYNOTIFY_STREAM_SECRET_FILE"])
        #expect(error?.errors.first?.message.contains("PAYNOTIFY_STREAM_SECRET are both set") == true)
    }

    /// A file that cannot be read, or holds nothing, is named by its setting and path, and the
    /// secret it stands for then counts as missing.
    @Test func unreadableAndEmptyFilesAreRefused() throws {
        let directory = try TemporaryDirectory()
        var environment = self.valid
        environment["PAYNOTIFY_API_KEYS"] = nil
        environment["PAYNOTIFY_API_KEYS_FILE"] = directory.path + "/absent"
        environment["PAYNOTIFY_STRIPE_SECRETS_FILE"] = try directory.write("empty", contents: "\n")
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(
            error?.errors.map(\.setting)
                == ["PAYNOTIFY_API_KEYS_FILE", "PAYNOTIFY_STRIPE_SECRETS_FILE", "PAYNOTIFY_API_KEYS"]
        )
        #expect(error?.errors.first?.message.contains("/absent, which cannot be read") == true)
        #expect(error?.errors.dropFirst().first?.message.contains("which is empty") == true)
    }
}

extension ConfigurationTests {
    /// Missing or weak secrets stop the start, naming the setting and never echoing the value.
    @Test(arguments: [
        ("PAYNOTIFY_API_KEYS", nil), ("PAYNOTIFY_API_KEYS", "short-key"), ("PAYNOTIFY_API_KEYS", " , "),
        ("PAYNOTIFY_STREAM_SECRET", nil), ("PAYNOTIFY_STREAM_SECRET", "too-short-secret"),
        ("PAYNOTIFY_SANDBOX_SECRETS", "tiny"),
    ])
    func secretsAreChecked(setting: String, value: String?) {
        var environment = self.valid
        environment[setting] = value
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == [setting])
        if let value, value.count > 3 { #expect(error.map { !"\($0)".contains(value) } ?? false) }
    }

    /// Several API keys (rotation) and webhook secrets are read as lists.
    @Test func listsAreSplit() throws {
        var environment = self.valid
        environment["PAYNOTIFY_API_KEYS"] = "merchant-key-aaaaaaaaaa, merchant-key-bbbbbbbbbb"
        environment["PAYNOTIFY_SANDBOX_SECRETS"] = "secret-one,secret-two"
        let configuration = try AppConfiguration(environment: environment)
        #expect(configuration.security.apiKeys == ["merchant-key-aaaaaaaaaa", "merchant-key-bbbbbbbbbb"])
        #expect(configuration.providers.sandboxSecrets == ["secret-one", "secret-two"])
        #expect(configuration.providers.stripeSecrets.isEmpty)
        #expect(Set(configuration.providers.adapters.keys) == [.sandbox])
    }
}

extension ConfigurationTests {
    /// Reproducer: Alipay hands out its key as bare base64, which contains "/"; it must be read as key
    /// text, not as a file path. A path to a PEM file works too, and a bad one is named.
    @Test func alipayKeyAsTextOrFile() throws {
        let key = TestRSAKeys.key(2).publicKey
        var base64 = key.derRepresentation.base64EncodedString()
        // Make sure the reproducer really holds a slash (one in 64 characters is, on average).
        while !base64.contains("/") {
            base64 = TestRSAKeys.key(5).publicKey.derRepresentation.base64EncodedString()
        }
        var environment = self.valid
        environment["PAYNOTIFY_ALIPAY_APP_ID"] = "2021000000000000"
        environment["PAYNOTIFY_ALIPAY_PUBLIC_KEY"] = base64
        #expect(try AppConfiguration(environment: environment).providers.alipay?.publicKey == base64)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("alipay-\(UUID().uuidString).pem")
        try key.pemRepresentation.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        environment["PAYNOTIFY_ALIPAY_PUBLIC_KEY"] = file.path
        #expect(try AppConfiguration(environment: environment).providers.alipay?.publicKey == key.pemRepresentation)

        environment["PAYNOTIFY_ALIPAY_PUBLIC_KEY"] = "/no/such/alipay.pem"
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(error?.errors.map(\.setting) == ["PAYNOTIFY_ALIPAY_PUBLIC_KEY"])
        environment["PAYNOTIFY_ALIPAY_PUBLIC_KEY"] = nil
        #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
    }
}

extension ConfigurationTests {
    /// Every bad setting is named in one run, in the order they are read, each once; a good one
    /// beside them is not.
    @Test func everyBadSettingIsNamedAtOnce() {
        var environment = self.valid
        environment["DATABASE_URL"] = nil
        environment["PAYNOTIFY_PORT"] = "eighty"
        environment["PAYNOTIFY_STREAM_SECRET"] = "short"
        environment["PAYNOTIFY_TRUSTED_PROXIES"] = "10.0.0.0/99"
        environment["PAYNOTIFY_WECHATPAY_APIV3_KEY"] = "0123456789abcdef0123456789abcdef"
        environment["PAYNOTIFY_LOG_LEVEL"] = "loud"
        environment["PAYNOTIFY_HEARTBEAT_SECONDS"] = "20"
        let error = #expect(throws: ConfigurationErrors.self) { try AppConfiguration(environment: environment) }
        #expect(
            error?.errors.map(\.setting) == [
                "PAYNOTIFY_PORT", "DATABASE_URL", "PAYNOTIFY_STREAM_SECRET", "PAYNOTIFY_TRUSTED_PROXIES",
                "PAYNOTIFY_WECHATPAY_PLATFORM_KEYS", "PAYNOTIFY_LOG_LEVEL",
            ]
        )
        #expect(error.map { "\($0)".split(separator: "\n").count } == 6)
    }

    /// The providers section reads alone (what `paynotify simulate` does), with the same checks,
    /// and gives a simulator the server's shared settings.
    @Test func providersReadAlone() throws {
        let providers = try AppConfiguration.Providers(environment: [
            "PAYNOTIFY_SANDBOX_SECRETS": "secret-one,secret-two", "PAYNOTIFY_STRIPE_SECRETS": "whsec_0123456789",
        ])
        #expect(providers.simulatorCredentials.sandboxSecret == "secret-one")
        #expect(providers.simulatorCredentials.stripeSecret == "whsec_0123456789")
        #expect(Set(providers.adapters.keys) == [.sandbox, .stripe])
        let error = #expect(throws: ConfigurationErrors.self) {
            try AppConfiguration.Providers(environment: ["PAYNOTIFY_ALIPAY_APP_ID": "2021000000000000"])
        }
        #expect(error?.errors.map(\.setting) == ["PAYNOTIFY_ALIPAY_PUBLIC_KEY"])
    }
}
