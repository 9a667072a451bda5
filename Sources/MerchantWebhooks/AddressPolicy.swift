public import NetworkAddresses

/// Which addresses a merchant's webhook may be delivered to. Everything public is allowed; the
/// addresses of this machine and its networks (loopback, private, link-local with the cloud
/// metadata service, shared, multicast, reserved) are refused, unless the operator's allowlist
/// (`PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS`) names them: a webhook must not become a way into the
/// network the service runs in (SSRF).
public struct AddressPolicy: Sendable, Hashable {
    public let allowed: [IPAddressRange]

    public init(allowed: [IPAddressRange] = []) {
        self.allowed = allowed
    }

    /// Why `address` is refused, or `nil` when a delivery may go there.
    public func refusal(of address: IPAddress) -> String? {
        guard !self.allowed.contains(where: { $0.contains(address) }) else { return nil }
        return Self.forbidden.first { $0.block.contains(address) }.map { "\(address) is \($0.kind)" }
    }

    private static let forbidden: [(block: IPAddressRange, kind: String)] = [
        ("0.0.0.0/8", "an unspecified address"), ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"), ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (the cloud metadata service is one)"),
        ("172.16.0.0/12", "a private address"), ("192.0.0.0/24", "a reserved address"),
        ("192.168.0.0/16", "a private address"), ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"), ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"), ("::1/128", "a loopback address"),
        ("64:ff9b::/96", "a NAT64 address"), ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"), ("ff00::/8", "a multicast address"),
    ].map { (IPAddressRange($0.0)!, $0.1) }
}
