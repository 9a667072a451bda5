import Foundation

/// The texts WeChat Pay API v3 signs, both ways (WECHATPAY2-SHA256-RSA2048, SHA256withRSA):
/// - a merchant's request, signed with the merchant API key: `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`,
///   carried in `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`
///   (the five items in any order);
/// - WeChat Pay's answers and notifications, signed with the platform key:
///   `TIMESTAMP\nNONCE\nBODY\n`, in the `Wechatpay-Timestamp`, `-Nonce`, `-Signature` and `-Serial`
///   headers. An empty body (a close's `204`) still ends with its own `\n`.
public enum WeChatPaySignature {
    /// The one scheme in use, in `Authorization` and `Wechatpay-Signature-Type`.
    public static let scheme = "WECHATPAY2-SHA256-RSA2048"

    /// What a merchant signs for a request: `target` is the path with its query exactly as sent,
    /// `body` the exact bytes sent (empty for a GET).
    public static func requestMessage(method: String, target: String, timestamp: Int64, nonce: String, body: [UInt8])
        -> [UInt8]
    {
        Array("\(method)\n\(target)\n\(timestamp)\n\(nonce)\n".utf8) + body + [UInt8(ascii: "\n")]
    }

    /// What WeChat Pay signs for an answer or a notification: the header texts as sent, then the body.
    public static func responseMessage(timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        Array("\(timestamp)\n\(nonce)\n".utf8) + body + [UInt8(ascii: "\n")]
    }

    /// The signing items of a request's `Authorization` header.
    public struct Authorization: Sendable, Hashable {
        public var merchantID: String
        public var nonce: String
        public var timestamp: Int64
        public var serial: String
        /// Base64.
        public var signature: String

        public init(merchantID: String, nonce: String, timestamp: Int64, serial: String, signature: String) {
            self.merchantID = merchantID
            self.nonce = nonce
            self.timestamp = timestamp
            self.serial = serial
            self.signature = signature
        }

        /// The header's value.
        public var header: String {
            "\(WeChatPaySignature.scheme) mchid=\"\(self.merchantID)\",nonce_str=\"\(self.nonce)\","
                + "timestamp=\"\(self.timestamp)\",serial_no=\"\(self.serial)\",signature=\"\(self.signature)\""
        }

        /// Reads a header written by any client: the scheme, then `name="value"` items in any order;
        /// `nil` unless all five are there once each.
        public init?(header: String) {
            let prefix = WeChatPaySignature.scheme + " "
            guard header.hasPrefix(prefix) else { return nil }
            var items: [String: String] = [:]
            for part in header.dropFirst(prefix.count).split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { return nil }
                let name = pair[0].trimmingCharacters(in: .whitespaces)
                let quoted = pair[1].trimmingCharacters(in: .whitespaces)
                guard quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\""),
                    items.updateValue(String(quoted.dropFirst().dropLast()), forKey: name) == nil
                else { return nil }
            }
            guard items.count == 5, let merchantID = items["mchid"], let nonce = items["nonce_str"],
                let timestamp = items["timestamp"].flatMap({ Int64($0) }), let serial = items["serial_no"],
                let signature = items["signature"]
            else { return nil }
            self.init(merchantID: merchantID, nonce: nonce, timestamp: timestamp, serial: serial, signature: signature)
        }
    }
}
