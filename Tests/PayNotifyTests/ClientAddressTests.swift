import Testing

@testable import PayNotify

@Suite("Client addresses")
struct ClientAddressTests {
    /// Reproducer: the per-address stream limit counted exact addresses, so an IPv6 client could
    /// open streams from every address of its /64. IPv6 is now counted by its /64; IPv4 (mapped
    /// into IPv6 or not) by itself; anything else as it came.
    @Test(arguments: [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"), ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"), ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"), ("unknown", "unknown"),
    ])
    func limitKeys(address: String, key: String) {
        #expect(ClientAddressResolver.limitKey(for: address) == key)
    }
}
