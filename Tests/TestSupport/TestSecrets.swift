import Crypto
import Foundation

/// The secrets every test server is configured with, and signing as the sandbox provider does.
public enum TestSecrets {
    public static let apiKey = "test-merchant-key-0123456789"
    public static let oldAPIKey = "old-merchant-key-0000000000"
    public static let streamSecret = "stream-secret-for-tests-0123456789abcdef"
    public static let sandboxSecret = "sandbox-test-secret"
    public static let adminToken = "admin-token-for-tests-0123"

    /// The settings a test server starts from (database and port aside).
    public static var environment: [String: String] {
        [
            "PAYNOTIFY_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory.path,
            "PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "2000",
            "PAYNOTIFY_LOG_LEVEL": "error",
            "PAYNOTIFY_API_KEYS": "\(oldAPIKey),\(apiKey)",
            "PAYNOTIFY_STREAM_SECRET": streamSecret,
            "PAYNOTIFY_SANDBOX_SECRETS": sandboxSecret,
        ]
    }

    /// `t=<t>,v1=<hex HMAC>` over `"<t>.<body>"`, as a sandbox sender signs.
    public static func sandboxSignature(_ body: String, secret: String = sandboxSecret, timestamp: Int) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Array("\(timestamp).\(body)".utf8),
            using: SymmetricKey(data: Array(secret.utf8))
        )
        return "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }
}
