import Foundation
import Hummingbird

/// JSON as the emulator writes it: compact, keys sorted, `/` unescaped, non-ASCII as UTF-8.
enum JSON {
    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The bytes of `value`; only the emulator's own plain structs are encoded, which cannot fail.
    static func encode(_ value: some Encodable) -> [UInt8] {
        Array(try! Self.encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) -> T? {
        try? JSONDecoder().decode(type, from: Data(bytes))
    }
}

extension Response {
    /// An answer of `body` (JSON unless `contentType` says otherwise; none when `body` is empty).
    static func bytes(
        _ status: HTTPResponse.Status,
        _ body: [UInt8],
        headers: HTTPFields = [:],
        contentType: String = "application/json; charset=utf-8"
    ) -> Response {
        var headers = headers
        if !body.isEmpty { headers[.contentType] = contentType }
        return Response(
            status: status,
            headers: headers,
            body: body.isEmpty ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}
