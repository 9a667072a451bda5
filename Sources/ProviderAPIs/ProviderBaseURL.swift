/// Where a provider's API is: `scheme://host[:port]` and an optional path prefix (Alipay's
/// `/gateway.do`, or an emulator's mount point), without a query, a fragment or credentials.
///
/// Plain `http` is refused unless asked for: Stripe's answers are authenticated only by TLS, and
/// the others' requests carry what a listener should not read. Tests and a local emulator ask
/// for it.
public struct ProviderBaseURL: Sendable, Hashable, CustomStringConvertible {
    /// `scheme://host[:port]`, as configured.
    package let origin: String
    /// The path prefix, `""` or starting with `/`, without a trailing `/`.
    package let path: String

    /// - Throws: unless `text` is an `https` URL (or `http` with `allowPlainHTTP`) with a host
    ///   and nothing after the path.
    public init(_ text: String, allowPlainHTTP: Bool = false) throws(ProviderConfigurationError) {
        let rest: Substring
        if text.hasPrefix("https://") {
            rest = text.dropFirst("https://".count)
        } else if text.hasPrefix("http://") {
            guard allowPlainHTTP else {
                throw ProviderConfigurationError("the provider URL \(text) is not https")
            }
            rest = text.dropFirst("http://".count)
        } else {
            throw ProviderConfigurationError("the provider URL \(text) is neither https nor http")
        }
        guard
            !text.unicodeScalars.contains(where: {
                $0.properties.isWhitespace || $0.value < 0x21 || $0.value == 0x7F || $0.value > 0x7E
            })
        else { throw ProviderConfigurationError("the provider URL contains spaces or characters outside ASCII") }
        guard !rest.contains("?"), !rest.contains("#") else {
            throw ProviderConfigurationError("the provider URL \(text) has a query or a fragment")
        }
        let authority = rest.prefix { $0 != "/" }
        guard !authority.isEmpty, !authority.contains("@") else {
            throw ProviderConfigurationError("the provider URL \(text) has no host, or has credentials")
        }
        var path = rest.dropFirst(authority.count)
        while path.hasSuffix("/") { path = path.dropLast() }
        self.origin = String(text.prefix(text.count - rest.count + authority.count))
        self.path = String(path)
    }

    /// The URL of `target` (a path, with its query, starting with `/`) under this base.
    package func url(_ target: String) -> String { self.origin + target }

    public var description: String { self.origin + self.path }
}
