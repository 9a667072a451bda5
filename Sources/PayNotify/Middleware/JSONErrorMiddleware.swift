import HTTPTypes
public import Hummingbird
import Logging
import Postgres

/// Turns every error that escapes a handler into the API's JSON error shape, in one place.
///
/// - ``APIError`` keeps its status and code.
/// - Hummingbird's `HTTPError` (unknown route, wrong method, body too large…) keeps its status and
///   gets a code derived from it.
/// - A transient ``PostgresError`` (database down, pool exhausted) is `503` with `Retry-After`, so
///   providers and merchants retry.
/// - Anything else is a bug: logged with the request, answered `500` without details.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            return try Self.apiError(for: error, request: request, context: context).response(
                from: request,
                context: context
            )
        }
    }

    static func apiError(for error: any Error, request: Request, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            return APIError(
                error.status,
                code: Self.code(for: error.status),
                message: error.body ?? error.status.reasonPhrase,
                headers: error.headers
            )
        case let error as PostgresError where error.isTransient:
            context.logger.warning("database unavailable", metadata: ["error": "\(error)"])
            return .databaseUnavailable
        default:
            context.logger.error(
                "unhandled error",
                metadata: ["error": "\(error)", "method": "\(request.method)", "path": "\(request.uri.path)"]
            )
            return .unexpected
        }
    }

    /// `404` → `not_found`, `413` → `content_too_large`: the reason phrase in snake case.
    static func code(for status: HTTPResponse.Status) -> String {
        status.reasonPhrase.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce(into: "") {
            code,
            character in
            if character != "_" || code.last != "_" { code.append(character) }
        }
    }
}
