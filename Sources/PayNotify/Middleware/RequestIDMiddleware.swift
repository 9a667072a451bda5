import HTTPTypes
public import Hummingbird
import Logging

/// Gives every request an id, logged with everything the request logs (`request_id`) and echoed as
/// `X-Request-ID`: the one nginx (or another proxy) sent, so its access log and ours line up, or a
/// new random one. A sent id that is not 1–128 printable ASCII characters is replaced, so a client
/// cannot forge log lines through it.
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let id = request.headers[.xRequestID].flatMap(Self.acceptable) ?? Self.generate()
        var context = context
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request_id"] = "\(id)"
        var response = try await next(request, context)
        response.headers[.xRequestID] = id
        return response
    }

    private static func acceptable(_ id: String) -> String? {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) ? id : nil
    }

    /// 128 random bits in hex, like nginx's `$request_id`.
    private static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return String(high, radix: 16).leftPadded(to: 16) + String(low, radix: 16).leftPadded(to: 16)
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-ID")!
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - self.count)) + self
    }
}
