import ArgumentParser
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import MerchantWebhooks
import NIOCore
import NIOHTTP1
import Synchronization

/// `paynotify listen`: a local receiver for merchant webhooks, for developers integrating with us.
/// It checks each delivery as a careful backend would (the signature with the endpoint's secret, the
/// timestamp within 5 minutes), prints it readably, and answers `--status` (try `500` to watch the
/// retries, `410` to see the endpoint disabled); `--forward-to` passes each verified delivery on.
/// `--quiet` prints only the counts when it stops: a receiver for load tests (`make bench`).
struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive merchant webhooks locally: verify, print and answer each (development)."
    )

    @Option(help: "The endpoint's signing secret (whsec_…); give it twice while rotating.")
    var secret: [String]

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 9090

    @Option(help: "The status to answer verified deliveries with.")
    var status: Int = 204

    @Option(help: "Also POST each verified delivery (its headers and body) to this URL.")
    var forwardTo: String?

    @Flag(help: "Print nothing per delivery, only how many were verified and refused when stopped.")
    var quiet = false

    func validate() throws {
        guard !self.secret.isEmpty, self.secret.allSatisfy({ WebhookSecret($0) != nil }) else {
            throw ValidationError("--secret must be the endpoint's whsec_… secret")
        }
        guard (100...599).contains(self.status) else { throw ValidationError("--status must be an HTTP status") }
        if let forwardTo = self.forwardTo, URL(string: forwardTo)?.host == nil {
            throw ValidationError("--forward-to must be a URL such as http://127.0.0.1:3000/webhooks")
        }
    }

    func run() async throws {
        let secrets = self.secret.compactMap(WebhookSecret.init)
        let answer = HTTPResponse.Status(code: self.status)
        let forwardTo = self.forwardTo
        let quiet = self.quiet
        let counts = Mutex((verified: 0, refused: 0))
        let router = Router()
        router.post("**") { request, _ -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            let header: (String) -> String? = { name in HTTPField.Name(name).flatMap { request.headers[$0] } }
            do {
                try MessageVerifier.verify(header: header, body: body, secrets: secrets, now: Date())
            } catch {
                counts.withLock { $0.refused += 1 }
                if !quiet { Self.print("✗ refused \(request.uri.path): \(error)") }
                return Response(status: .badRequest)
            }
            counts.withLock { $0.verified += 1 }
            if !quiet { Self.print(Self.describe(body: body, id: header("webhook-id") ?? "", answer: answer)) }
            if let forwardTo { await Self.forward(body: body, headers: request.headers, to: forwardTo) }
            return Response(status: answer)
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(self.host, port: self.port), serverName: "paynotify-listen")
        )
        Self.print("listening on http://\(self.host):\(self.port)/ for merchant webhooks; Ctrl-C stops")
        try await app.runService()
        let (verified, refused) = counts.withLock { ($0.verified, $0.refused) }
        Self.print("stopped: \(verified) deliveries verified, \(refused) refused")
    }

    /// One delivery, readably: the type, the order and its status, the message id, the JSON.
    private static func describe(body: [UInt8], id: String, answer: HTTPResponse.Status) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        else { return "✓ \(id) (not JSON), answered \(answer.code)" }
        let message = object as? [String: Any]
        let data = message?["data"] as? [String: Any]
        let type = message?["type"] as? String ?? "?"
        let order = data?["id"] as? String ?? "?"
        let status = data?["status"] as? String ?? "?"
        return "✓ \(type) \(order) (\(status)) \(id), answered \(answer.code)\n"
            + String(decoding: pretty, as: UTF8.self)
    }

    private static func forward(body: [UInt8], headers: HTTPFields, to url: String) async {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for field in headers where field.name.canonicalName.hasPrefix("webhook-") || field.name == .contentType {
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        request.body = .bytes(body)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
            Self.print("  → forwarded to \(url): \(response.status.code)")
        } catch {
            Self.print("  → forwarding to \(url) failed: \(error)")
        }
    }

    private static func print(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
