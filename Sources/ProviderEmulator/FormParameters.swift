import Foundation

/// The `name=value` pairs of a query string or an `application/x-www-form-urlencoded` body, in
/// order, decoded once: `+` is a space (Alipay's SDKs encode the space in `timestamp` so), `%XX`
/// a byte. A segment without `=` is a name with an empty value; nil when an escape is invalid or
/// the bytes are not UTF-8.
func formParameters(_ text: some StringProtocol) -> [(name: String, value: String)]? {
    var pairs: [(name: String, value: String)] = []
    for segment in text.split(separator: "&") {
        let parts = segment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        // `+` before the percent-decoding: a literal plus arrives as %2B.
        guard let name = parts[0].replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
            let value = (parts.count > 1 ? parts[1] : "").replacingOccurrences(of: "+", with: " ")
                .removingPercentEncoding
        else { return nil }
        pairs.append((name, value))
    }
    return pairs
}
