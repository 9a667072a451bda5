/// Stream ids filed by the whole second they may next be due, so that a tick looks only at the
/// slots that have come (about heartbeat⁻¹ of the streams each second), never at every stream:
/// with 10,000 streams a whole pass under the hub's lock was measured at 5–15 ms, ten times a
/// second, holding up every delivery meanwhile.
///
/// An id may be filed more than once (a stream refiled before its old slot came): the caller keeps
/// each stream's current slot and skips it in any other.
package struct TimingWheel: Sendable {
    /// Slot 0.
    private let epoch: ContinuousClock.Instant
    private var slots: [Int64: [Int]] = [:]
    /// The last slot emptied.
    package private(set) var lastSlot: Int64 = 0

    package init(epoch: ContinuousClock.Instant) {
        self.epoch = epoch
    }

    /// Files `id` at the first slot not before `instant` and after the last slot emptied; returns
    /// the slot.
    package mutating func file(_ id: Int, dueAt instant: ContinuousClock.Instant) -> Int64 {
        let slot = max(self.slot(of: instant) + 1, self.lastSlot + 1)
        self.slots[slot, default: []].append(id)
        return slot
    }

    /// Empties the slots that have come by `now`, oldest first. What is filed after this lands
    /// after `now`'s slot, so it is not handed out twice in one call.
    package mutating func advance(to now: ContinuousClock.Instant) -> [(slot: Int64, ids: [Int])] {
        let current = self.slot(of: now)
        var due: [(slot: Int64, ids: [Int])] = []
        while self.lastSlot < current {
            self.lastSlot += 1
            if let ids = self.slots.removeValue(forKey: self.lastSlot) { due.append((self.lastSlot, ids)) }
        }
        return due
    }

    /// Whole seconds since the epoch, rounded down.
    private func slot(of instant: ContinuousClock.Instant) -> Int64 {
        Int64(((instant - self.epoch) / .seconds(1)).rounded(.down))
    }
}
