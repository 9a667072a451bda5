import Foundation
import NIOCore

/// An IP address, or a CIDR range of them (`10.0.0.0/8`, `::1`, `fd00::/8`).
public struct IPAddressRange: Sendable, Hashable {
    /// The network's bytes: 4 for IPv4, 16 for IPv6.
    let network: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bytes.count * 8).contains(value) else { return nil }
            length = value
        } else {
            length = bytes.count * 8
        }
        self.network = bytes
        self.prefixLength = length
    }

    /// Whether `address` (textual) lies in the range. IPv4-mapped IPv6 addresses count as IPv4.
    func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address), bytes.count == self.network.count else { return false }
        var remaining = self.prefixLength
        for (have, want) in zip(bytes, self.network) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard have & mask == want & mask else { return false }
            remaining -= bits
        }
        return true
    }

    /// The address's bytes (4 or 16), with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) folded to IPv4.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12...])
        }
        return bytes
    }
}

/// Who counts as the client for the per-address stream limit: the peer, unless the peer is a
/// trusted proxy; then the nearest address in `X-Forwarded-For` that is not a trusted proxy
/// (entries further left were written by the client itself and prove nothing).
struct ClientAddressResolver: Sendable {
    let trustedProxies: [IPAddressRange]

    func address(peer: SocketAddress?, forwardedFor: String?) -> String {
        let peerAddress = peer?.ipAddress ?? "unknown"
        guard self.isTrusted(peerAddress), let forwardedFor else { return peerAddress }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peerAddress
        for hop in hops.reversed() {
            guard IPAddressRange.bytes(of: hop) != nil else { break }
            client = hop
            if !self.isTrusted(hop) { break }
        }
        return client
    }

    /// What the per-address limit counts for a client: an IPv6 address by its /64 (a subscriber is
    /// usually given a whole one, and could otherwise open streams from as many addresses as it
    /// likes), an IPv4 address (IPv4-mapped IPv6 included) by itself.
    static func limitKey(for address: String) -> String {
        guard var bytes = IPAddressRange.bytes(of: address) else { return address }
        if bytes.count == 16 { bytes.replaceSubrange(8..<16, with: repeatElement(0, count: 8)) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = bytes.withUnsafeBytes { raw in
            inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &text, socklen_t(text.count))
        }
        guard written != nil else { return address }
        let formatted = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return bytes.count == 4 ? formatted : formatted + "/64"
    }

    private func isTrusted(_ address: String) -> Bool {
        self.trustedProxies.contains { $0.contains(address) }
    }
}

/// The origins whose pages may read streams across origins (CORS).
public enum AllowedOrigins: Sendable, Hashable {
    case any
    case only(Set<String>)

    /// Whether a page from `origin` may read streams; `false` for a request without an origin
    /// (it is no cross-origin request).
    func allows(_ origin: String?) -> Bool {
        guard let origin else { return false }
        switch self {
        case .any: return true
        case .only(let origins): return origins.contains(origin)
        }
    }
}
