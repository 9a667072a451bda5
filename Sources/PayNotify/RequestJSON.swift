import Foundation
import HTTPTypes
import Hummingbird

/// Reading JSON request bodies with clear refusals: `413` past the size limit (before the body is
/// read whole), `415` for another content type, `400` naming where the JSON is wrong.
enum RequestJSON {
    static func decode<T: Decodable>(_ request: Request, context: some RequestContext, limit: Int) async throws -> T {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(
                .unsupportedMediaType,
                code: "unsupported_media_type",
                message: "Send the body as application/json."
            )
        }
        let buffer = try await request.body.collect(upTo: limit)
        do {
            return try JSONDecoder().decode(T.self, from: Data(Array(buffer: buffer)))
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "invalid_json", message: Self.describe(error))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the body" : keys.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)) has the wrong type: expected \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(path(context)) is null: expected \(Self.name(of: type))"
        case .keyNotFound(let key, _):
            return "\(key.stringValue) is missing"
        case .dataCorrupted(let context):
            // Foundation's own sentence says what is wrong ("Parsed JSON number <19.99> does not fit in Int64").
            return "\(path(context)) is not valid: \(context.debugDescription)"
        @unknown default:
            return "the body is not valid JSON"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type: "an integer"
        case is String.Type: "a string"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "an object"
        }
    }
}

/// JSON responses built from ``JSONValue``s, with sorted keys.
enum ResponseJSON {
    static func response(_ status: HTTPResponse.Status, _ fields: [String: JSONValue]) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: .init(string: JSONValue.object(fields).text))
        )
    }

    /// ISO 8601 in UTC with milliseconds, as every timestamp in the API.
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        )
    }
}

extension JSONValue {
    /// Parses stored JSON text.
    static func parse(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}
