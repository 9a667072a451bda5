import Crypto
import Foundation
import PayNotify
import TestSupport

/// The settings every application test starts from; tests override what they exercise.
enum TestConfiguration {
    static let apiKey = "test-merchant-key-0123456789"
    static let sandboxSecret = "sandbox-test-secret"

    static func make(databaseURL: String, overrides: [String: String] = [:]) throws -> AppConfiguration {
        var environment = [
            "DATABASE_URL": databaseURL,
            "PAYNOTIFY_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory.path,
            "PAYNOTIFY_DB_ACQUIRE_TIMEOUT_MS": "2000",
            "PAYNOTIFY_LOG_LEVEL": "error",
            "PAYNOTIFY_API_KEYS": "old-merchant-key-0000000000,\(apiKey)",
            "PAYNOTIFY_STREAM_SECRET": "stream-secret-for-tests-0123456789abcdef",
            "PAYNOTIFY_SANDBOX_SECRETS": sandboxSecret,
        ]
        environment.merge(overrides) { $1 }
        return try AppConfiguration(environment: environment)
    }

    /// `t=<t>,v1=<hex HMAC>` over `"<t>.<body>"`, as a sandbox sender signs.
    static func sandboxSignature(_ body: String, secret: String = sandboxSecret, timestamp: Int) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Array("\(timestamp).\(body)".utf8),
            using: SymmetricKey(data: Array(secret.utf8))
        )
        return "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }
}
