/// All the emulator's mutable state, one value under one lock (``Emulator``): decisions are made
/// on it under the lock, and the IO they call for (answers, callbacks) happens outside.
struct EmulatorState: Sendable {
    var trades = TradeBook()
    var faults = FaultPlan()
    var calls = CallLog()
    /// Stripe's `Idempotency-Key`s.
    var idempotency = IdempotencyStore()
}
