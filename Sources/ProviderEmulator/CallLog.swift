import Payments

/// Every provider API call the emulator answered (control calls are not), for tests and the
/// benchmark, which count queries per order and their rate.
struct CallLog: Sendable {
    struct Call: Sendable, Encodable {
        let provider: Provider
        /// `query` or `close` (Stripe's cancel); for an Alipay method the emulator does not serve,
        /// the method's name.
        let operation: String
        /// Our order id; for a Stripe call about an unknown PaymentIntent, its id.
        let orderID: String?
        /// When the call arrived, in Unix milliseconds.
        let atMilliseconds: Int64
        /// The HTTP status answered.
        let status: Int

        enum CodingKeys: String, CodingKey {
            case provider, operation, status
            case orderID = "order_id"
            case atMilliseconds = "at_ms"
        }
    }

    private(set) var calls: [Call] = []

    mutating func record(_ call: Call) { self.calls.append(call) }

    func calls(to provider: Provider?) -> [Call] {
        guard let provider else { return self.calls }
        return self.calls.filter { $0.provider == provider }
    }

    mutating func removeAll() { self.calls = [] }
}
