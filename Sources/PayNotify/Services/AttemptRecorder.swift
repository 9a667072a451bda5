import Logging
import Storage
import Synchronization

/// Writes the outcomes of webhook attempts in batches: whatever ended while one write ran goes
/// into the next, one transaction (``MerchantWebhookStore/record(_:disableAfter:)``). Idle, an
/// outcome is written on its own at once; under load a transaction records many, where each
/// used to be a transaction of its own (its commit, its round trips, its hops through the pool).
/// An attempt's slot is free once its answer is in: the message stays leased until its outcome
/// is written, so nobody sends it again meanwhile, and the endpoint's next message need not wait
/// for the database.
///
/// An outcome that cannot be written (the database restarting, a dropped connection) is tried
/// again while its message's lease holds, less a margin; then it is given up, and the message
/// goes out again after its lease: a repeat, which at-least-once allows, never a loss.
final class AttemptRecorder: Sendable {
    private struct Entry: Sendable {
        let outcome: AttemptOutcome
        let message: ClaimedMessage
        let deadline: ContinuousClock.Instant
    }

    /// The most outcomes one transaction records; and how many may wait unwritten before the
    /// dispatcher stops claiming (``isFull``), which bounds the repeats a crash can cause: the
    /// attempts in flight and these.
    static let maximumBatch = 64

    private let state = Mutex<(waiting: [Entry], writing: Int, closing: Bool, finished: Bool)>(([], 0, false, false))
    private let wakeup = Wakeup()
    private let store: MerchantWebhookStore
    private let disableAfter: Duration
    private let logger: Logger
    /// Called after each write: a retry due at once is claimable only now.
    private let written: @Sendable () -> Void

    init(
        store: MerchantWebhookStore,
        disableAfter: Duration,
        logger: Logger,
        written: @escaping @Sendable () -> Void
    ) {
        self.store = store
        self.disableAfter = disableAfter
        self.logger = logger
        self.written = written
    }

    /// Queues the outcome, to be written within `window` or given up.
    func record(_ outcome: AttemptOutcome, of message: ClaimedMessage, within window: Duration) {
        let entry = Entry(outcome: outcome, message: message, deadline: .now + window)
        let queued = self.state.withLock { state in
            guard !state.finished else { return false }
            state.waiting.append(entry)
            return true
        }
        if queued { self.wakeup.signal() } else { self.giveUp(entry) }
    }

    /// Whether as many outcomes wait unwritten as one batch holds: claim no more until they are.
    var isFull: Bool {
        self.state.withLock { $0.waiting.count + $0.writing >= Self.maximumBatch }
    }

    /// Writes until ``close()``d (or cancelled), then what is still queued, once.
    func run() async {
        var batch: [Entry] = []
        var pause = Duration.milliseconds(100)
        while true {
            let closing = self.state.withLock { state in
                let taken = state.waiting.prefix(Self.maximumBatch - batch.count)
                state.waiting.removeFirst(taken.count)
                batch += taken
                state.writing = batch.count
                if batch.isEmpty && (state.closing || Task.isCancelled) { state.finished = true }
                return state.closing || Task.isCancelled
            }
            if batch.isEmpty {
                if closing { return }
                await self.wakeup.wait(timeout: .seconds(60))
                continue
            }
            if await self.write(batch) {
                batch = []
                pause = .milliseconds(100)
                continue
            }
            // Closing, there is no waiting for the database: these go out again after their leases.
            let now = ContinuousClock.now
            let expired = { (entry: Entry) in closing || entry.deadline <= now + pause }
            batch.filter(expired).forEach(self.giveUp)
            batch.removeAll(where: expired)
            if !closing {
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
    }

    /// Tells ``run()`` to write what is queued and return.
    func close() {
        self.state.withLock { $0.closing = true }
        self.wakeup.signal()
    }

    private func write(_ batch: [Entry]) async -> Bool {
        do {
            try await self.store.record(batch.map { ($0.outcome, $0.message) }, disableAfter: self.disableAfter)
        } catch {
            self.logger.warning(
                "could not record webhook attempts; trying again while their leases hold",
                metadata: ["attempts": "\(batch.count)", "error": "\(error)"]
            )
            return false
        }
        self.written()
        return true
    }

    private func giveUp(_ entry: Entry) {
        self.logger.warning(
            "could not record a webhook attempt; the message will be sent again after its lease",
            metadata: ["message": "\(entry.message.id)"]
        )
    }
}
