import Foundation
import MerchantWebhooks
import NetworkAddresses
import Testing

@Suite("Standard Webhooks signatures")
struct MessageSignatureTests {
    /// The reference libraries' own vectors (python `test_sign_function`, rust `test_sign`).
    @Test(arguments: [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", Int64(1_614_265_330),
            #"{"test": 2432232314}"#, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", Int64(1_649_367_553),
            #"{"email":"test@example.com","username":"test_user"}"#, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        ),
    ])
    func referenceVectors(secret: String, id: String, timestamp: Int64, body: String, expected: String) throws {
        let secret = try #require(WebhookSecret(secret))
        #expect(
            MessageSignature.header(id: id, timestamp: timestamp, body: Array(body.utf8), secrets: [secret]) == expected
        )
    }

    /// While a rotated secret still signs, both signatures go, the current one first.
    @Test func rotationSignsWithBoth() throws {
        let current = WebhookSecret.generate()
        let previous = try #require(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let header = MessageSignature.header(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8),
            secrets: [current, previous]
        )
        let parts = header.split(separator: " ")
        #expect(parts.count == 2)
        #expect(parts[1] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(parts[0].hasPrefix("v1,") && parts[0] != parts[1])
    }

    /// Generated secrets are `whsec_` and 32 random bytes, and never print themselves.
    @Test func generatedSecrets() throws {
        let secret = WebhookSecret.generate()
        #expect(secret.text.hasPrefix("whsec_"))
        #expect(Data(base64Encoded: String(secret.text.dropFirst(6)))?.count == 32)
        #expect(WebhookSecret.generate() != secret)
        #expect("\(secret)" == "whsec_(redacted)")
        for bad in [
            "", "whsec_", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_***",
            "whsec_" + String(repeating: "A", count: 8),
        ] {
            #expect(WebhookSecret(bad) == nil, "\(bad)")
        }
    }
}

@Suite("The retry schedule")
struct RetryScheduleTests {
    @Test func standardScheduleThenExhausted() {
        let schedule = RetrySchedule.standard
        // Eight attempts: the first at once, then these after each failure, then none.
        let expected: [Duration] = [
            .seconds(5), .seconds(300), .seconds(1_800), .seconds(7_200), .seconds(18_000), .seconds(36_000),
            .seconds(36_000),
        ]
        for (index, delay) in expected.enumerated() {
            #expect(schedule.delay(afterFailedAttempts: index + 1, random: 0.5) == delay)
        }
        #expect(schedule.delay(afterFailedAttempts: 8, random: 0.5) == nil)
        #expect(schedule.delay(afterFailedAttempts: 0, random: 0.5) == nil)
    }

    @Test func jitterAndRetryAfter() {
        let schedule = RetrySchedule.standard
        #expect(schedule.delay(afterFailedAttempts: 2, random: 0) == .seconds(270))
        #expect(schedule.delay(afterFailedAttempts: 2, random: 0.9999) ?? .zero > .seconds(329))
        // Retry-After only ever lengthens the wait.
        #expect(schedule.delay(afterFailedAttempts: 1, retryAfter: .seconds(60), random: 0.5) == .seconds(60))
        #expect(schedule.delay(afterFailedAttempts: 2, retryAfter: .seconds(60), random: 0.5) == .seconds(300))
    }

    @Test func parsing() {
        #expect(RetrySchedule(parsing: "0s,5s,5m,30m,2h,5h,10h,10h")?.delays == RetrySchedule.standard.delays)
        #expect(RetrySchedule(parsing: "100ms, 0.5s")?.delays == [.milliseconds(100), .milliseconds(500)])
        for bad in ["", "5", "5x", "-1s", "s", "5s,,5s", "nans"] {
            #expect(RetrySchedule(parsing: bad) == nil, "\(bad)")
        }
    }
}

@Suite("Where webhooks may go")
struct AddressPolicyTests {
    @Test(arguments: [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    ])
    func internalAddressesAreRefused(address: String) throws {
        let address = try #require(IPAddress(address))
        #expect(AddressPolicy().refusal(of: address) != nil)
    }

    @Test(arguments: ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
    func publicAddressesAreAllowed(address: String) throws {
        #expect(AddressPolicy().refusal(of: try #require(IPAddress(address))) == nil)
    }

    @Test func allowlistOpensABlock() throws {
        let policy = AddressPolicy(allowed: [
            try #require(IPAddressRange("127.0.0.0/8")), try #require(IPAddressRange("::1")),
        ])
        #expect(policy.refusal(of: try #require(IPAddress("127.0.0.2"))) == nil)
        #expect(policy.refusal(of: try #require(IPAddress("::1"))) == nil)
        #expect(policy.refusal(of: try #require(IPAddress("10.0.0.1"))) != nil)
        for bad in ["", "10.0.0.0/33", "::1/129", "10.0.0/8", "example.com/8", "10.0.0.0/-1"] {
            #expect(IPAddressRange(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Verifying a delivery as a merchant")
struct MessageVerifierTests {
    static let secret = WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!
    static let body = Array(#"{"test": 2432232314}"#.utf8)
    static let sent = Date(timeIntervalSince1970: 1_614_265_330)

    static func headers(signature: String = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") -> [String: String] {
        [
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
            "webhook-signature": signature,
        ]
    }

    static func verify(
        _ headers: [String: String],
        body: [UInt8] = Self.body,
        secrets: [WebhookSecret] = [Self.secret],
        now: Date = Self.sent
    ) -> MessageVerifier.Refusal? {
        do {
            try MessageVerifier.verify(header: { headers[$0] }, body: body, secrets: secrets, now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsTheReferenceVectorAmongOthers() {
        #expect(Self.verify(Self.headers()) == nil)
        #expect(
            Self.verify(Self.headers(signature: "v1a,xyz v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="))
                == nil
        )
        #expect(Self.verify(Self.headers(), secrets: [WebhookSecret.generate(), Self.secret]) == nil)
        #expect(Self.verify(Self.headers(), now: Self.sent.addingTimeInterval(299)) == nil)
    }

    @Test func refusesWhatACarefulMerchantWould() {
        #expect(Self.verify(Self.headers(), body: Self.body + [0x20]) == .noMatchingSignature)
        #expect(Self.verify(Self.headers(), secrets: [WebhookSecret.generate()]) == .noMatchingSignature)
        #expect(
            Self.verify(Self.headers(signature: "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="))
                == .noMatchingSignature
        )
        #expect(
            Self.verify(Self.headers(), now: Self.sent.addingTimeInterval(301))
                == .timestampOutOfTolerance(secondsAway: -301)
        )
        var missing = Self.headers()
        missing["webhook-id"] = nil
        #expect(Self.verify(missing) == .missingHeader("webhook-id"))
        missing = Self.headers()
        missing["webhook-timestamp"] = "soon"
        #expect(Self.verify(missing) == .missingHeader("webhook-timestamp"))
    }
}
