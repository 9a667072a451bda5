import Synchronization

/// A value behind a lock, shared by reference between tasks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) { self.value = Mutex(value) }

    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { self.value.withLock { body(&$0) } }
}
