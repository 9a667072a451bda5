import Foundation
import NetworkAddresses

/// A merchant endpoint's URL, checked: `https`, or `http` to a loopback host when the operator
/// allows it (development); a host; no credentials or fragment; at most 2,048 characters.
public struct EndpointURL: Sendable, Hashable {
    public let text: String
    public let host: String
    public let isHTTPS: Bool

    /// Why `text` cannot be an endpoint, or the checked URL.
    public static func check(_ text: String, allowHTTP: Bool) -> Result<EndpointURL, EndpointURLError> {
        guard (1...2_048).contains(text.utf8.count) else { return .failure(.init("must be 1–2048 characters")) }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            return .failure(.init("is not an absolute URL"))
        }
        guard let host = components.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), !host.isEmpty
        else { return .failure(.init("has no host")) }
        guard components.user == nil, components.password == nil else {
            return .failure(.init("must not carry credentials; authenticate the request by its signature"))
        }
        guard components.fragment == nil else { return .failure(.init("must not have a fragment")) }
        switch scheme {
        case "https":
            return .success(EndpointURL(text: text, host: host, isHTTPS: true))
        case "http" where allowHTTP && Self.isLoopbackName(host):
            return .success(EndpointURL(text: text, host: host, isHTTPS: false))
        case "http":
            return .failure(
                .init(
                    "must use https (http is allowed only to a loopback host with PAYNOTIFY_ALLOW_HTTP_WEBHOOKS=true)"
                )
            )
        default:
            return .failure(.init("must use https"))
        }
    }

    private static func isLoopbackName(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        guard let address = IPAddress(host) else { return false }
        return IPAddressRange("127.0.0.0/8")!.contains(address) || IPAddressRange("::1")!.contains(address)
    }
}

public struct EndpointURLError: Error, Sendable, Hashable {
    /// What is wrong, as a sentence's predicate ("must use https").
    public let reason: String

    init(_ reason: String) { self.reason = reason }
}
