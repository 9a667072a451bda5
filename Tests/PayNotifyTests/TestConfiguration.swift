import PayNotify
import TestSupport

/// The settings every application test starts from; tests override what they exercise.
enum TestConfiguration {
    static let apiKey = TestSecrets.apiKey
    static let sandboxSecret = TestSecrets.sandboxSecret

    static func make(databaseURL: String, overrides: [String: String] = [:]) throws -> AppConfiguration {
        var environment = TestSecrets.environment
        environment["DATABASE_URL"] = databaseURL
        environment.merge(overrides) { $1 }
        return try AppConfiguration(environment: environment)
    }

    static func sandboxSignature(_ body: String, secret: String = sandboxSecret, timestamp: Int) -> String {
        TestSecrets.sandboxSignature(body, secret: secret, timestamp: timestamp)
    }
}
