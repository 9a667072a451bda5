import Foundation
import NIOCore
import NetworkAddresses

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
            guard IPAddress(hop) != nil else { break }
            client = hop
            if !self.isTrusted(hop) { break }
        }
        return client
    }

    /// What the per-address limit counts for a client: an IPv6 address by its /64 (a subscriber is
    /// usually given a whole one, and could otherwise open streams from as many addresses as it
    /// likes), an IPv4 address (IPv4-mapped IPv6 included) by itself.
    static func limitKey(for address: String) -> String {
        guard var bytes = IPAddress(address)?.bytes else { return address }
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
