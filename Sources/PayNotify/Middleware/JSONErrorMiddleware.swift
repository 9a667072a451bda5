import HTTPTypes
public import Hummingbird
import Logging
import NIOHTTP1
import Payments
import Postgres
import Storage

/// Turns every error that escapes a handler into the API's JSON error shape, in one place.
///
/// - ``APIError`` keeps its status and code.
/// - The store's refusals (``OrderStoreError``) become 404 or 409 with their own codes.
/// - Hummingbird's errors (unknown route, wrong method, body too large…) keep their status and get a
///   code derived from it.
/// - A body that fails to parse as the handler reads it (a chunk size that is not hex, say) is `400`.
/// - A transient ``PostgresError`` (database down, pool exhausted) is `503` with `Retry-After`, so
///   providers and merchants retry; a value the database refuses as data (SQLSTATE class 22, or a
///   parameter libpq cannot send) is `422`.
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
        case let error as OrderStoreError:
            return Self.apiError(for: error)
        case let error as HTTPError:
            return APIError(
                error.status,
                code: Self.code(for: error.status),
                message: error.body ?? error.status.reasonPhrase,
                headers: error.headers
            )
        case let error as any HTTPResponseError:
            return APIError(error.status, code: Self.code(for: error.status), message: error.status.reasonPhrase)
        case let error as HTTPParserError:
            // Thrown from the body's stream: the head parsed, the body did not.
            return APIError(
                .badRequest,
                code: Self.code(for: .badRequest),
                message: "The request's body is malformed: \(error)."
            )
        case let error as PostgresError where error.kind == .invalidParameter || error.sqlState?.conditionClass == "22":
            // A value the database cannot take (class 22: data exception). Validation should have
            // caught it with a better message; this backstop keeps it a client error, not a 500.
            context.logger.notice("value refused by the database", metadata: ["error": "\(error)"])
            return APIError(
                .unprocessableContent,
                code: "invalid_value",
                message: "A value in the request cannot be stored."
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

    static func apiError(for error: OrderStoreError) -> APIError {
        switch error {
        case .orderNotFound:
            APIError(.notFound, code: "order_not_found", message: "No order has this id.")
        case .idempotencyKeyReused:
            APIError(
                .conflict,
                code: "idempotency_key_reused",
                message: "This Idempotency-Key was used with a different request."
            )
        case .merchantOrderIDReused:
            APIError(
                .conflict,
                code: "merchant_order_id_reused",
                message: "This merchant_order_id belongs to an order created by a different request."
            )
        case .orderFinished(let status):
            APIError(
                .conflict,
                code: "order_finished",
                message: "The order is \(status.rawValue); its stream has ended and takes no more events."
            )
        case .notCancelable(let status):
            APIError(
                .conflict,
                code: "order_not_cancelable",
                message: "Only a pending order can be canceled; this one is \(status.rawValue)."
            )
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
