import Glibc

/// An IPv4 or IPv6 address, as its bytes (4 or 16). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// is read as the IPv4 address it carries, so it cannot slip past a rule written for IPv4.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(v6Bytes: Array(repeating: 0, count: 10) + [0xff, 0xff] + withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(v6Bytes: withUnsafeBytes(of: &v6) { Array($0) })
    }

    /// From 16 bytes; an IPv4-mapped address becomes its 4.
    public init(v6Bytes bytes: [UInt8]) {
        let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff]
        self.bytes = Array(bytes.prefix(12)) == mappedPrefix ? Array(bytes.suffix(4)) : bytes
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = self.bytes.count == 4 ? AF_INET : AF_INET6
        _ = self.bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An IP address, or a CIDR range of them (`10.0.0.0/8`, `::1`, `fd00::/8`).
public struct IPAddressRange: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Reads `10.0.0.0/8` or `::1/128`; a bare address is a block of one.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : bits
        guard let length, (0...bits).contains(length) else { return nil }
        self.address = address
        self.prefixLength = length
    }

    /// Whether the range holds `text`'s address (false when `text` is not an address).
    public func contains(_ text: String) -> Bool {
        IPAddress(text).map(self.contains) ?? false
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == self.address.bytes.count else { return false }
        var remaining = self.prefixLength
        for (mine, theirs) in zip(self.address.bytes, candidate.bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            guard mine & mask == theirs & mask else { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(self.address)/\(self.prefixLength)" }
}
