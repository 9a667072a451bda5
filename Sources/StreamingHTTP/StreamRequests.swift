public import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore

/// How the server answers a stream request without Hummingbird's connection machinery
/// (``StreamingHTTP1Channel``): which request heads are stream requests, and the application's
/// own answer to a request (its router and middleware, which the stream routes live in).
public struct StreamRequests<Context: RequestContext>: Sendable
where Context.Source == ApplicationRequestContextSource {
    let matches: @Sendable (HTTPRequest) -> Bool
    private let responder: @Sendable (Request, Context) async throws -> Response
    private let serverName: String?
    private let logger: Logger
    private let date = HTTPDate()

    /// - Parameters:
    ///   - matches: whether a request head is a stream request. Asked of every request the server
    ///     reads first on a connection, so it must be cheap.
    ///   - responder: the application's router, whose stream routes answer the matched requests.
    public init<Responder: HTTPResponder>(
        matches: @escaping @Sendable (HTTPRequest) -> Bool,
        responder: Responder,
        serverName: String?,
        logger: Logger
    ) where Responder.Context == Context {
        self.matches = matches
        self.responder = { request, context in try await responder.respond(to: request, context: context) }
        self.serverName = serverName
        self.logger = logger
    }

    /// The response, with the headers Hummingbird's server adds to its own (`Date`, `Server`), and
    /// its bare `500` for an error no middleware answered (the application's error middleware
    /// answers them all).
    func respond(to request: Request, on channel: any Channel) async -> Response {
        let context = Context(source: .init(channel: channel, logger: self.logger))
        var response: Response
        do {
            response = try await self.responder(request, context)
        } catch {
            self.logger.debug("unanswered error", metadata: ["error": "\(error)"])
            response = Response(status: .internalServerError)
        }
        response.headers[.date] = self.date.now()
        if let serverName { response.headers[.server] = serverName }
        return response
    }
}
