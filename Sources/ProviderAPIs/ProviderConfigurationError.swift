/// Why a provider client cannot be configured: a base URL, a key or a limit that is not right.
/// Messages name the setting, never a secret.
public struct ProviderConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
