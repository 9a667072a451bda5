public import HTTPTypes
public import Hummingbird

/// A refusal the API answers with: a status and a JSON body `{"error": {"code", "message"}}`.
///
/// Handlers throw it; ``JSONErrorMiddleware`` turns it, and every other error, into that shape.
public struct APIError: Error, Sendable, HTTPResponseError {
    public let status: HTTPResponse.Status
    /// A stable, machine-readable code such as `not_found` or `invalid_request`.
    public let code: String
    /// A sentence for the developer reading the response.
    public let message: String
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let body = JSONBody.encode(ErrorBody(error: .init(code: self.code, message: self.message)))
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: body))
    }

    private struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
        }

        let error: Detail
    }
}

extension APIError {
    /// The service cannot reach its database just now; the client should retry.
    static let databaseUnavailable = APIError(
        .serviceUnavailable,
        code: "database_unavailable",
        message: "The database is unavailable; retry shortly.",
        headers: [.retryAfter: "1"]
    )

    static let unexpected = APIError(
        .internalServerError,
        code: "internal_error",
        message: "The server failed to handle the request; it has been logged."
    )
}

/// A request field that breaks a rule: `422 invalid_field`, the message naming the field and the
/// rule ("amount must be between 1 and 10^12 minor units").
func invalid(_ field: String, _ rule: String) -> APIError {
    APIError(.unprocessableContent, code: "invalid_field", message: "\(field) \(rule)")
}
