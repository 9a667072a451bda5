import Crypto
import Foundation
import PaymentProviders
import Payments
import TestSupport
import Testing
import _CryptoExtras

/// SplitMix64: a small, fast generator whose sequence a seed fixes, so a failing run repeats.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The fuzz runs' size and seed: `PAYNOTIFY_FUZZ_ITERATIONS` (default 300 per case, what
/// `make test` runs) and `PAYNOTIFY_FUZZ_SEED` (a failure prints the one it used).
enum FuzzSettings {
    static let iterations = Int(ProcessInfo.processInfo.environment["PAYNOTIFY_FUZZ_ITERATIONS"] ?? "") ?? 300
    static let seed = UInt64(ProcessInfo.processInfo.environment["PAYNOTIFY_FUZZ_SEED"] ?? "") ?? 20_261_122

    /// The corpus: tricky bodies kept in the repository (`FuzzCorpus/`), one a file.
    static let corpus: [[UInt8]] = {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCorpus")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().compactMap { try? Array(Data(contentsOf: folder.appendingPathComponent($0))) }
    }()
}

/// Mutations of bytes and headers, structure-blind (bit flips, insertions, cuts) and
/// structure-aware (JSON punctuation, numbers, escapes, header values).
enum Mutator {
    static let interesting: [[UInt8]] = [
        Array("\"".utf8), Array("\\".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8), Array(",".utf8),
        Array(":".utf8), Array("null".utf8), Array("-1".utf8), Array("1e309".utf8), Array("\\u0000".utf8),
        Array("\\ud800".utf8), Array("%".utf8), Array("&".utf8), Array("=".utf8), [0], [0xFF], [0xC3],
        Array("99999999999999999999".utf8), Array("\n".utf8),
    ]

    static func mutate(_ bytes: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = bytes
        let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0 where !bytes.isEmpty:
            bytes[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
        case 1:
            bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
        case 2 where !bytes.isEmpty:
            let end = min(bytes.count, position + Int.random(in: 1...16, using: &generator))
            bytes.removeSubrange(position..<end)
        case 3:
            bytes = Array(bytes.prefix(position))
        case 4:
            bytes.insert(contentsOf: Self.interesting.randomElement(using: &generator)!, at: position)
        default:
            // Swap two digits, or turn a digit into another: amounts and timestamps.
            if let digit = bytes.indices.filter({ (48...57).contains(bytes[$0]) }).randomElement(using: &generator) {
                bytes[digit] = UInt8.random(in: 48...57, using: &generator)
            }
        }
        return bytes
    }

    static func mutate(_ headers: [String: String], using generator: inout SeededGenerator) -> [String: String] {
        var headers = headers
        guard let name = headers.keys.sorted().randomElement(using: &generator) else { return headers }
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: headers[name] = nil
        case 1: headers[name] = ""
        case 2:
            headers[name] = String(decoding: Self.mutate(Array(headers[name]!.utf8), using: &generator), as: UTF8.self)
        default: headers[name] = headers[name]! + ", " + headers[name]!
        }
        return headers
    }
}

@Suite("Webhook adapters under fuzzing")
struct AdapterFuzzTests {
    private static let wechatKey = TestRSAKeys.key(3)
    private static let alipayKey = TestRSAKeys.key(4)
    private static let apiV3Key = "0123456789abcdef0123456789abcdef"
    private static let now = Date(timeIntervalSince1970: 1_790_000_000)

    private static let simulator: DeliverySimulator = {
        var credentials = DeliverySimulator.Credentials()
        credentials.sandboxSecret = "sandbox-secret"
        credentials.stripeSecret = "whsec_test_secret"
        credentials.wechatPaySerial = "SIMSERIAL"
        credentials.wechatPayPrivateKey = Self.wechatKey
        credentials.wechatPayAPIv3Key = Self.apiV3Key
        credentials.alipayPrivateKey = Self.alipayKey
        credentials.alipayAppID = "2021000000000000"
        return DeliverySimulator(credentials: credentials)
    }()

    private static func adapter(for provider: Provider) -> any WebhookAdapter {
        switch provider {
        case .sandbox: SandboxAdapter(secrets: ["sandbox-secret"], tolerance: 300)
        case .stripe: StripeAdapter(secrets: ["whsec_test_secret"], tolerance: 300)
        case .wechatpay:
            WeChatPayAdapter(
                platformKeys: ["SIMSERIAL": Self.wechatKey.publicKey],
                apiV3Key: Array(Self.apiV3Key.utf8),
                tolerance: 300
            )
        case .alipay: AlipayAdapter(publicKeys: [Self.alipayKey.publicKey], appID: "2021000000000000", tolerance: nil)
        }
    }

    /// What an accepted delivery means, the raw bytes aside (a harmless change to them, such as
    /// reordered form fields, may keep the meaning).
    private struct Meaning: Hashable {
        let eventID: String
        let eventType: String
        let orderReference: String?
        let event: PaymentEvent?

        init(_ delivery: WebhookDelivery) {
            (self.eventID, self.eventType, self.orderReference, self.event) = (
                delivery.eventID, delivery.eventType, delivery.orderReference, delivery.event
            )
        }
    }

    /// Mutated bodies and headers of valid deliveries are refused with a WebhookRejection, never a
    /// crash; a mutation that is accepted must mean exactly what the original meant.
    @Test(arguments: Provider.allCases)
    func mutationsNeverForgeADelivery(provider: Provider) throws {
        var generator = SeededGenerator(seed: FuzzSettings.seed &+ UInt64(provider.rawValue.utf8.count))
        let adapter = Self.adapter(for: provider)
        let outcomes = DeliverySimulator.Outcome.allCases.filter { provider == .sandbox || $0 != .progress }
        var refused = 0
        for iteration in 0..<FuzzSettings.iterations {
            let outcome = outcomes[iteration % outcomes.count]
            let original = try Self.simulator.delivery(
                provider: provider,
                orderID: "ord_fuzz\(iteration)",
                outcome: outcome,
                paid: Money(amount: 1999, currency: "CNY"),
                now: Self.now
            )
            let meaning = Meaning(try adapter.verify(original, now: Self.now))
            var request = original
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                if Bool.random(using: &generator) {
                    request = WebhookRequest(
                        headers: request.headers,
                        body: Mutator.mutate(request.body, using: &generator)
                    )
                } else {
                    request = WebhookRequest(
                        headers: Mutator.mutate(request.headers, using: &generator),
                        body: request.body
                    )
                }
            }
            do throws(WebhookRejection) {
                let accepted = Meaning(try adapter.verify(request, now: Self.now))
                #expect(accepted == meaning, "seed \(FuzzSettings.seed), iteration \(iteration): a forgery passed")
            } catch {
                refused += 1
            }
        }
        #expect(refused > FuzzSettings.iterations / 2, "suspiciously few mutations refused: \(refused)")
    }

    /// Bodies that are signed correctly but malformed (the corpus and random mutations of it, and
    /// of valid payloads) never crash a parser: each comes back as a delivery or a WebhookRejection.
    @Test(arguments: Provider.allCases)
    func signedGarbageNeverCrashes(provider: Provider) throws {
        var generator = SeededGenerator(seed: FuzzSettings.seed ^ 0xA5A5 &+ UInt64(provider.rawValue.utf8.count))
        let adapter = Self.adapter(for: provider)
        var inputs = FuzzSettings.corpus
        for iteration in 0..<FuzzSettings.iterations {
            let seed = inputs.randomElement(using: &generator) ?? []
            inputs.append(Mutator.mutate(seed, using: &generator))
            let request = Self.signed(inputs.last!, for: provider, iteration: iteration)
            do throws(WebhookRejection) {
                let delivery = try adapter.verify(request, now: Self.now)
                #expect(delivery.provider == provider)
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }

    /// `payload` delivered as `provider` would sign it: the body itself (sandbox, Stripe), the
    /// decrypted resource (WeChat Pay), or the form's fields (Alipay).
    private static func signed(_ payload: [UInt8], for provider: Provider, iteration: Int) -> WebhookRequest {
        let timestamp = Int(Self.now.timeIntervalSince1970)
        switch provider {
        case .sandbox, .stripe:
            let secret = provider == .sandbox ? "sandbox-secret" : "whsec_test_secret"
            let code = HMAC<SHA256>.authenticationCode(
                for: Array("\(timestamp).".utf8) + payload,
                using: SymmetricKey(data: Array(secret.utf8))
            )
            let header = "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
            return WebhookRequest(
                headers: [provider == .sandbox ? "Sandbox-Signature" : "Stripe-Signature": header],
                body: payload
            )
        case .wechatpay:
            let nonce = "fuzznonce\(iteration)"
            let box = try! AES.GCM.seal(
                payload,
                using: SymmetricKey(data: Array(Self.apiV3Key.utf8)),
                nonce: AES.GCM.Nonce(data: Array("abcdefghijkl".utf8)),
                authenticating: Array("transaction".utf8)
            )
            let body = Array(
                (#"{"id":"EV-\#(iteration)","event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource","#
                    + #""resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":""#
                    + (box.ciphertext + box.tag).base64EncodedString()
                    + #"","nonce":"abcdefghijkl","associated_data":"transaction"}}"#).utf8
            )
            let message = Array("\(timestamp)\n\(nonce)\n".utf8) + body + [UInt8(ascii: "\n")]
            return WebhookRequest(
                headers: [
                    "Wechatpay-Timestamp": "\(timestamp)", "Wechatpay-Nonce": nonce,
                    "Wechatpay-Signature": rsaSignature(message, key: Self.wechatKey), "Wechatpay-Serial": "SIMSERIAL",
                ],
                body: body
            )
        case .alipay:
            // The payload's bytes split into fields as a form parser would see them, then signed.
            let text = String(decoding: payload, as: UTF8.self)
            let fields = text.split(separator: "&").map { pair -> (String, String) in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }.filter { !$0.0.isEmpty && $0.0 != "sign" && $0.0 != "sign_type" }
            let base = [("app_id", "2021000000000000"), ("notify_id", "fuzz\(iteration)")]
            return WebhookRequest(
                headers: ["Content-Type": "application/x-www-form-urlencoded"],
                body: Array(alipayBody(base + fields, key: Self.alipayKey).utf8)
            )
        }
    }
}
