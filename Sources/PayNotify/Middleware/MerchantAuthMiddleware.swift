import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Signatures

/// Requires `Authorization: Bearer <api key>` with one of the configured keys (several, for
/// rotation). Keys are compared as SHA-256 digests in constant time, against every key, so neither
/// the answer's timing nor its content says how close a guess came.
struct MerchantAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    private let keyDigests: [[UInt8]]

    init(apiKeys: [String]) {
        self.keyDigests = apiKeys.map { Array(SHA256.hash(data: Array($0.utf8))) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let presented = bearerToken(request), self.accepts(presented) else {
            throw APIError(
                .unauthorized,
                code: "unauthorized",
                message: "Send a valid API key as Authorization: Bearer <key>.",
                headers: [.wwwAuthenticate: #"Bearer realm="paynotify""#]
            )
        }
        return try await next(request, context)
    }

    private func accepts(_ key: String) -> Bool {
        let digest = Array(SHA256.hash(data: Array(key.utf8)))
        // Every key is compared, whichever matches.
        return self.keyDigests.reduce(false) { matched, candidate in constantTimeEquals(candidate, digest) || matched }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
func bearerToken(_ request: Request) -> String? {
    guard let header = request.headers[.authorization] else { return nil }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].trimmingCharacters(in: .whitespaces)
    return token.isEmpty ? nil : token
}
