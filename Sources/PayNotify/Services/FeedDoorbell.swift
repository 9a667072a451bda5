import Synchronization

/// Wakes every open merchant event stream when events may have committed (this instance's commits,
/// and every notification the relay receives), and bounds how many are open.
final class FeedDoorbell: Sendable {
    private let state = Mutex<(next: Int, listeners: [Int: Wakeup])>((0, [:]))
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// A new listener's id and wake-up, or `nil` when `limit` are open.
    func open() -> (id: Int, wakeup: Wakeup)? {
        self.state.withLock { state in
            guard state.listeners.count < self.limit else { return nil }
            state.next += 1
            let wakeup = Wakeup()
            state.listeners[state.next] = wakeup
            return (state.next, wakeup)
        }
    }

    func close(_ id: Int) {
        _ = self.state.withLock { $0.listeners.removeValue(forKey: id) }
    }

    func ring() {
        for wakeup in self.state.withLock({ Array($0.listeners.values) }) { wakeup.signal() }
    }

    var openCount: Int { self.state.withLock { $0.listeners.count } }
}
