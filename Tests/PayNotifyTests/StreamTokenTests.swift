import Foundation
import Testing

@testable import PayNotify

@Suite("StreamTokenSigner")
struct StreamTokenTests {
    private let signer = StreamTokenSigner(secret: "stream-secret-for-tests-0123456789abcdef")
    private let now = Date(timeIntervalSince1970: 1_790_000_000)

    /// A token opens its own order's stream until it expires, and nothing else.
    @Test func validOnlyForItsOrderUntilExpiry() {
        let token = self.signer.token(orderID: "ord_a", expiresAt: self.now.addingTimeInterval(60))
        #expect(self.signer.isValid(token, orderID: "ord_a", now: self.now))
        #expect(!self.signer.isValid(token, orderID: "ord_b", now: self.now))
        #expect(!self.signer.isValid(token, orderID: "ord_a", now: self.now.addingTimeInterval(61)))
        let otherSecret = StreamTokenSigner(secret: "another-secret-entirely-0123456789abcd")
        #expect(!otherSecret.isValid(token, orderID: "ord_a", now: self.now))
    }

    /// Tampered, truncated or malformed tokens are refused, never crash.
    @Test func tamperedTokensAreRefused() {
        let token = self.signer.token(orderID: "ord_a", expiresAt: self.now.addingTimeInterval(60))
        let parts = token.split(separator: ".").map(String.init)
        let extended = "v1.\(Int(parts[1])! + 3600).\(parts[2])"
        for candidate in [
            extended, String(token.dropLast()), token + "A", "", "v1", "v1..", "v2.\(parts[1]).\(parts[2])",
            "v1.x.\(parts[2])", "v1.1.%%%",
        ] {
            #expect(!self.signer.isValid(candidate, orderID: "ord_a", now: self.now), "\(candidate)")
        }
    }
}
