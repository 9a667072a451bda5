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

    /// The signature's encoding: RFC 4648's test vectors, the URL-safe characters, and every length
    /// against Foundation's base64 with the alphabet swapped and the padding dropped.
    @Test func base64URLEncoding() {
        let vectors = [
            "": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy",
        ]
        for (text, encoded) in vectors { #expect(Array(text.utf8).base64URLEncoded == encoded) }
        #expect([0xFB, 0xFF, 0xBF].base64URLEncoded == "-_-_")
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let oracle = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(bytes.base64URLEncoded == oracle, "\(bytes)")
        }
    }
}
