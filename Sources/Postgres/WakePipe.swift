import Glibc

/// A pipe that lets any thread wake one thread blocked in `poll` (the listener's), for shutdown.
///
/// `@unchecked Sendable`: the descriptors are fixed at creation; ``signal()`` is a `write` and
/// ``wait(alongside:timeout:)`` a `poll`, both safe from any thread. ``close()`` runs once, after the
/// waiting thread has finished.
final class WakePipe: @unchecked Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32

    /// What ended a ``wait(alongside:timeout:)``.
    enum WakeReason {
        case signalled
        case readable
        case timedOut
    }

    init() throws(PostgresError) {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw PostgresError(kind: .connectionFailed, message: "could not create a pipe: errno \(errno)")
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            _ = fcntl(descriptor, F_SETFL, O_NONBLOCK)
        }
        self.readEnd = descriptors[0]
        self.writeEnd = descriptors[1]
    }

    /// Wakes the waiting thread, now or at its next wait. The byte stays in the pipe, so every later
    /// wait returns at once too.
    func signal() {
        var byte: UInt8 = 1
        _ = write(self.writeEnd, &byte, 1)
    }

    /// Blocks until the pipe is signalled, `descriptor` (if any) becomes readable or closes, or the
    /// timeout passes (`nil` waits without limit).
    func wait(alongside descriptor: Int32?, timeout: Duration?) -> WakeReason {
        var descriptors = [pollfd(fd: self.readEnd, events: Int16(POLLIN), revents: 0)]
        if let descriptor { descriptors.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)) }
        let milliseconds = timeout.map { Int32(clamping: $0.wholeMilliseconds) } ?? -1
        while true {
            let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { return ready == 0 ? .timedOut : .readable }
            if descriptors[0].revents != 0 { return .signalled }
            return .readable
        }
    }

    func close() {
        Glibc.close(self.readEnd)
        Glibc.close(self.writeEnd)
    }
}
