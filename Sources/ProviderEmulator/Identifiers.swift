/// Random identifiers in each provider's shape.
enum Identifiers {
    /// `count` characters of `[0-9A-Za-z]`: WeChat Pay's nonces, Stripe's ids.
    static func alphanumerics(_ count: Int) -> String {
        Self.text(count, from: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
    }

    static func digits(_ count: Int) -> String { Self.text(count, from: Array("0123456789")) }

    /// WeChat Pay's 28-digit `transaction_id`.
    static func wechatPayTransactionID() -> String { "4200000000" + Self.digits(18) }

    /// Alipay's 28-digit `trade_no`.
    static func alipayTradeNo() -> String { "2026" + Self.digits(24) }

    static func paymentIntentID() -> String { "pi_" + Self.alphanumerics(24) }

    /// A `Request-ID` like WeChat Pay's.
    static func requestID() -> String { Self.alphanumerics(32) }

    private static func text(_ count: Int, from alphabet: [Character]) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
