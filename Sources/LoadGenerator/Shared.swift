import Synchronization

/// A value several tasks and event loops share (a `Mutex` in a class, so closures can hold it).
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        self.mutex = Mutex(value)
    }

    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T {
        self.mutex.withLock { body(&$0) }
    }

    var value: Value { self.mutex.withLock { $0 } }
}

/// A count several tasks and event loops bump.
final class SharedCounter: Sendable {
    private let atomic = Atomic<Int>(0)

    init() {}

    /// Adds one and returns the count before.
    @discardableResult
    func increment() -> Int { self.atomic.add(1, ordering: .relaxed).oldValue }

    var value: Int { self.atomic.load(ordering: .relaxed) }
}
