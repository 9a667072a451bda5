import Foundation
import MerchantWebhooks

/// A setting that is missing or invalid; the message names it and never repeats a secret's value.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let setting: String
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(self.setting) \(self.message)" }
}

/// Every setting that is missing or invalid, in the order they were read: one run of the service
/// names them all.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public let errors: [ConfigurationError]

    /// One line a setting.
    public var description: String { self.errors.map(\.description).joined(separator: "\n") }
}

/// Typed reads of settings, where empty values count as unset. A value that cannot be used is
/// recorded (``errors``) and replaced by its default, so that reading goes on and every bad
/// setting is found in one pass; the caller throws them all at the end.
final class SettingsReader {
    let environment: [String: String]
    private(set) var errors: [ConfigurationError] = []

    /// Reads `environment` with every secret's `_FILE` form resolved (``SecretFiles``); a problem
    /// with one is recorded like any other bad setting.
    init(environment: [String: String]) {
        let (resolved, errors) = SecretFiles.resolving(environment)
        self.environment = resolved
        self.errors = errors
    }

    func refuse(_ setting: String, _ message: String) {
        self.errors.append(ConfigurationError(setting: setting, message: message))
    }

    /// Throws every refusal recorded so far.
    func finish() throws(ConfigurationErrors) {
        if !self.errors.isEmpty { throw ConfigurationErrors(errors: self.errors) }
    }

    func string(_ name: String) -> String? {
        guard let value = self.environment[name], !value.isEmpty else { return nil }
        return value
    }

    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) -> Int {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            self.refuse(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
            return defaultValue
        }
        return value
    }

    func seconds(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) -> Duration {
        .seconds(self.integer(name, default: defaultValue, in: range))
    }

    func milliseconds(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) -> Duration {
        .milliseconds(self.integer(name, default: defaultValue, in: range))
    }

    func boolean(_ name: String, default defaultValue: Bool) -> Bool {
        guard let text = self.string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            self.refuse(name, "must be true or false, not \"\(text)\"")
            return defaultValue
        }
    }

    /// A comma-separated list, entries trimmed, empty entries dropped.
    func list(_ name: String) -> [String] {
        (self.string(name) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// A comma-separated list of secrets; the message never repeats one.
    func secrets(_ name: String, minimumLength: Int, required: Bool) -> [String] {
        let values = self.list(name)
        if values.isEmpty && required {
            self.refuse(name, "is not set; give one or more comma-separated values")
        }
        if let short = values.firstIndex(where: { $0.count < minimumLength }) {
            self.refuse(name, "value #\(short + 1) is shorter than \(minimumLength) characters")
            return []
        }
        return values
    }

    /// Durations separated by commas, each a number and `ms`, `s`, `m` or `h` (`1m,2m,5m`).
    func durations(_ name: String, default defaultValue: [Duration]) -> [Duration] {
        guard let text = self.string(name) else { return defaultValue }
        guard let delays = RetrySchedule(parsing: text)?.delays, delays.allSatisfy({ $0 > .zero }) else {
            self.refuse(name, "must be durations above zero separated by commas, such as 1m,2m,5m, not \"\(text)\"")
            return defaultValue
        }
        return delays
    }

    /// One duration: a number and `ms`, `s`, `m` or `h` (`30m`).
    func duration(_ name: String, default defaultValue: Duration) -> Duration {
        let values = self.durations(name, default: [defaultValue])
        guard values.count == 1 else {
            self.refuse(name, "must be one duration, such as 30m")
            return defaultValue
        }
        return values[0]
    }

    /// One of an enumeration's raw values (case-insensitive).
    func choice<T: RawRepresentable & CaseIterable>(_ name: String, default defaultValue: T) -> T
    where T.RawValue == String {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = T(rawValue: text.lowercased()) else {
            let values = T.allCases.map(\.rawValue).joined(separator: ", ")
            self.refuse(name, "must be one of \(values), not \"\(text)\"")
            return defaultValue
        }
        return value
    }

    /// The text of a file a setting names; `nil` (and a refusal) when it cannot be read.
    func file(_ path: String, setting: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            self.refuse(setting, "names \(path), which cannot be read")
            return nil
        }
        return text
    }
}

/// Secrets the way containers pass them: every setting that holds a secret can instead name a file
/// that holds it, in `<SETTING>_FILE` (`PAYNOTIFY_STREAM_SECRET_FILE=/run/secrets/stream`), as Docker
/// and Kubernetes mount secrets. The file's text is the value, less the line break that ends it.
/// Giving both forms is an error naming both: neither silently wins.
public enum SecretFiles {
    /// The settings that hold secrets, each readable from a file.
    public static let settings = [
        "DATABASE_URL", "PAYNOTIFY_LISTEN_DATABASE_URL", "PAYNOTIFY_API_KEYS", "PAYNOTIFY_STREAM_SECRET",
        "PAYNOTIFY_ADMIN_TOKEN", "PAYNOTIFY_SANDBOX_SECRETS", "PAYNOTIFY_STRIPE_SECRETS",
        "PAYNOTIFY_WECHATPAY_APIV3_KEY", "PAYNOTIFY_STRIPE_API_KEY",
    ]

    /// `environment` with each `<SETTING>_FILE` replaced by `<SETTING>` and the file's text.
    ///
    /// - Throws: ``ConfigurationErrors`` naming each setting given twice or each file that
    ///   cannot be read.
    public static func resolve(_ environment: [String: String]) throws(ConfigurationErrors) -> [String: String] {
        let (resolved, errors) = Self.resolving(environment)
        if !errors.isEmpty { throw ConfigurationErrors(errors: errors) }
        return resolved
    }

    static func resolving(_ environment: [String: String]) -> ([String: String], [ConfigurationError]) {
        var resolved = environment
        var errors: [ConfigurationError] = []
        for setting in Self.settings {
            let fileSetting = setting + "_FILE"
            guard let path = resolved.removeValue(forKey: fileSetting), !path.isEmpty else { continue }
            if let value = environment[setting], !value.isEmpty {
                errors.append(
                    ConfigurationError(setting: fileSetting, message: "and \(setting) are both set; give one")
                )
                continue
            }
            guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8)
            else {
                errors.append(ConfigurationError(setting: fileSetting, message: "names \(path), which cannot be read"))
                continue
            }
            while text.last?.isNewline == true { text.removeLast() }
            guard !text.isEmpty else {
                errors.append(ConfigurationError(setting: fileSetting, message: "names \(path), which is empty"))
                continue
            }
            resolved[setting] = text
        }
        return (resolved, errors)
    }
}
