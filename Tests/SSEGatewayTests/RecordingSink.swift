import SSEGateway
import Synchronization

/// A sink that keeps what the hub or feed wrote, and refuses once `capacity` writes are held.
final class RecordingSink: StreamSink {
    private let written = Mutex<[String]>([])
    private let capacity: Int

    init(capacity: Int = .max) {
        self.capacity = capacity
    }

    func send(_ text: String) -> Bool {
        self.written.withLock { written in
            guard written.count < self.capacity else { return false }
            written.append(text)
            return true
        }
    }

    var texts: [String] { self.written.withLock { $0 } }

    /// The `id:` values written, in order.
    var ids: [Int64] {
        self.texts.joined().split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
    }
}

/// What `onEnd` was called with.
final class Ends: Sendable {
    private let ends = Mutex<[StreamEnd]>([])

    func record(_ end: StreamEnd) { self.ends.withLock { $0.append(end) } }

    var all: [StreamEnd] { self.ends.withLock { $0 } }
}
