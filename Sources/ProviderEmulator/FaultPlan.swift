import Payments

/// A way a provider's API can misbehave on purpose, as `POST /control/faults` names it.
enum Fault: String, Sendable, Hashable, CaseIterable, Decodable {
    /// A `500` in the provider's error shape; the call is not performed.
    case serverError = "error_5xx"
    /// A `429` with `Retry-After`; the call is not performed.
    case rateLimit = "rate_limit"
    /// The call is performed, and its answer held for the configured hang before it is sent: the
    /// client gives up first, not knowing whether a close took effect.
    case timeout
    /// The real answer with a signature that is well formed but does not verify.
    case badSignature = "bad_signature"
    /// The real answer without its signature.
    case unsigned

    /// Whether the fault is about the answer's signature, which Stripe's answers do not have.
    var concernsSignature: Bool { self == .badSignature || self == .unsigned }
}

/// The faults planned for each provider: the next API calls to it take them in order, one per
/// call, `count` calls for each plan.
struct FaultPlan: Sendable {
    struct Planned: Sendable, Hashable {
        let fault: Fault
        var remaining: Int
        /// `Retry-After` of a rate limit, in seconds.
        let retryAfterSeconds: Int
    }

    private var plans: [Provider: [Planned]] = [:]

    mutating func add(_ fault: Fault, count: Int, retryAfterSeconds: Int, for provider: Provider) {
        guard count > 0 else { return }
        self.plans[provider, default: []]
            .append(Planned(fault: fault, remaining: count, retryAfterSeconds: retryAfterSeconds))
    }

    /// The fault the next call to `provider` meets, used up by asking; nil when none is planned.
    mutating func next(for provider: Provider) -> Planned? {
        guard var queue = self.plans[provider], var first = queue.first else { return nil }
        first.remaining -= 1
        if first.remaining == 0 { queue.removeFirst() } else { queue[0] = first }
        self.plans[provider] = queue.isEmpty ? nil : queue
        return first
    }

    mutating func removeAll() { self.plans = [:] }
}
