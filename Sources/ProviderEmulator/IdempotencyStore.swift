/// Stripe's saved answers by `Idempotency-Key` (docs.stripe.com/idempotency): the first answer to a
/// key is kept and sent again for every request that repeats it with the same parameters; the
/// same key with other parameters is an error. Keys are never pruned here (Stripe prunes after
/// 24 h); the emulator lives shorter than that.
struct IdempotencyStore: Sendable {
    struct Saved: Sendable, Hashable {
        /// The method, path and body of the request that made it.
        let fingerprint: String
        let status: Int
        let body: [UInt8]
    }

    enum Lookup: Hashable {
        case replay(Saved)
        /// The key was used with other parameters.
        case mismatch
        case unused
    }

    private var saved: [String: Saved] = [:]

    func lookup(key: String, fingerprint: String) -> Lookup {
        guard let saved = self.saved[key] else { return .unused }
        return saved.fingerprint == fingerprint ? .replay(saved) : .mismatch
    }

    mutating func save(_ answer: Saved, key: String) { self.saved[key] = answer }
}
