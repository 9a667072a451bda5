import ArgumentParser
import Foundation
import NIOHTTP1
import PayNotify
import PayNotifyClient
import PaymentProviders
import Payments
import _CryptoExtras

/// `paynotify simulate`: sends one correctly signed provider delivery to a running server, as the
/// provider would. It signs with the same settings `make run` gives the server (the first secret
/// of each list; for WeChat Pay and Alipay the development private keys under `.data/dev-keys`).
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a signed provider webhook for an order to a running server (development)."
    )

    @Option(help: "sandbox, stripe, wechatpay or alipay.")
    var provider: String = "sandbox"

    @Option(help: "The order id.")
    var order: String

    @Option(help: "processing, progress (sandbox only), succeeded, failed or canceled.")
    var outcome: String

    @Option(help: "The server's base URL.")
    var url: String = "http://127.0.0.1:8080"

    @Option(
        help:
            "The paid amount in minor units; defaults to the order's (read through the merchant API). Set it to test a mismatch."
    )
    var amount: Int64?

    @Option(help: "Directory of the development private keys.")
    var keys: String = ".data/dev-keys"

    func run() async throws {
        guard let provider = Provider(rawValue: self.provider) else {
            throw ValidationError("unknown provider \(self.provider)")
        }
        guard let outcome = DeliverySimulator.Outcome(rawValue: self.outcome) else {
            throw ValidationError("unknown outcome \(self.outcome)")
        }
        guard let components = URLComponents(string: self.url), let host = components.host else {
            throw ValidationError("--url must be like http://127.0.0.1:8080")
        }
        let client = LoopbackHTTPClient(host: host, port: components.port ?? 80)
        let environment = try refusingBadSettings { () throws(ConfigurationErrors) in
            try SecretFiles.resolve(ProcessInfo.processInfo.environment)
        }
        let price = try await self.orderPrice(client: client, environment: environment)
        let paid = Money(amount: self.amount ?? price.amount, currency: price.currency)
        let request = try DeliverySimulator(credentials: try self.credentials(environment))
            .delivery(provider: provider, orderID: self.order, outcome: outcome, paid: paid, now: Date())
        let response = try await client.send(
            method: .POST,
            path: "/v1/webhooks/\(provider.rawValue)",
            headers: request.headers.map { ($0.key, $0.value) },
            body: request.body
        )
        print(
            "\(provider.rawValue) \(outcome.rawValue) for \(self.order) (paid \(paid)) → \(response.status) \(response.text)"
        )
        guard (200..<300).contains(response.status) else { throw ExitCode.failure }
    }

    /// The order's price, from the merchant API with the first configured API key.
    private func orderPrice(client: LoopbackHTTPClient, environment: [String: String]) async throws -> Money {
        guard let key = environment["PAYNOTIFY_API_KEYS"]?.split(separator: ",").first.map(String.init) else {
            throw ValidationError(
                "PAYNOTIFY_API_KEYS is not set: the simulator reads the order through the merchant API"
            )
        }
        let response = try await client.send(
            method: .GET,
            path: "/v1/orders/\(self.order)",
            headers: [("Authorization", "Bearer \(key)")],
            body: []
        )
        guard response.status == 200,
            let order = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let amount = order["amount"] as? Int64, let currency = order["currency"] as? String
        else { throw ValidationError("could not read order \(self.order): \(response.status) \(response.text)") }
        return Money(amount: amount, currency: currency)
    }

    /// The server's provider settings, read as `serve` reads them, and the development private keys.
    private func credentials(_ environment: [String: String]) throws -> DeliverySimulator.Credentials {
        let providers = try refusingBadSettings { () throws(ConfigurationErrors) in
            try AppConfiguration.Providers(environment: environment)
        }
        func privateKey(_ file: String) throws -> _RSA.Signing.PrivateKey? {
            let path = URL(fileURLWithPath: self.keys).appendingPathComponent(file).path
            guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        }
        var credentials = providers.simulatorCredentials
        credentials.wechatPayPrivateKey = try privateKey("wechatpay-platform-private.pem")
        credentials.alipayPrivateKey = try privateKey("alipay-private.pem")
        return credentials
    }
}
