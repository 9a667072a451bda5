import Foundation
import Logging
import MerchantWebhooks
import ServiceLifecycle
import Storage
import Synchronization

/// Delivers the merchant webhook outbox: claims due messages (``MerchantWebhookStore/claimDue``,
/// `SKIP LOCKED` with a lease, so every instance delivers and none twice at once), sends each
/// (``WebhookSender``), and records the attempt and what follows it on the ``RetrySchedule``
/// (``AttemptRecorder``, which writes many outcomes per transaction).
///
/// It looks for messages when woken (this instance committed events, or a notification says
/// another did, or an attempt finished) and otherwise when the next retry falls due, at least every
/// `idleCheck`: a lease that ran out on a dead instance is found then. While no endpoint is
/// enabled (checked every `idleCheck`, and at once when this instance's API changes one) a commit
/// costs it nothing: it does not look. An endpoint has at most
/// `perEndpoint` attempts in flight here and the instance at most `maximumInFlight`, so a slow or
/// dead endpoint holds only its own slots.
struct WebhookDispatcher: Service {
    struct Settings: Sendable {
        var schedule: RetrySchedule
        var perEndpoint: Int
        var maximumInFlight: Int
        /// How long a claimed message is held before another instance may claim it again.
        var lease: Duration
        var disableAfter: Duration
        var idleCheck: Duration
    }

    let store: MerchantWebhookStore
    let sender: WebhookSender
    let settings: Settings
    let signals: DispatcherSignals
    let metrics: ServiceMetrics
    let logger: Logger
    let now: @Sendable () -> Date

    func run() async throws {
        let inFlight = Shared<[String: Int]>([:])
        let stopping = Shared(false)
        let recorder = AttemptRecorder(
            store: self.store,
            disableAfter: self.settings.disableAfter,
            logger: self.logger,
            written: { [signals] in signals.wakeup.signal() }
        )
        await withDiscardingTaskGroup { recording in
            recording.addTask { await recorder.run() }
            await withDiscardingTaskGroup { group in
                await withGracefulShutdownHandler {
                    var endpointsCheckedAt: ContinuousClock.Instant?
                    var endpointsExist = true
                    while !Task.isCancelled, !stopping.withLock({ $0 }) {
                        let now = ContinuousClock.now
                        if self.signals.takeEndpointsChanged()
                            || endpointsCheckedAt.map({ now - $0 >= self.settings.idleCheck }) ?? true
                        {
                            endpointsExist = (try? await self.store.hasEnabledEndpoints()) ?? true
                            endpointsCheckedAt = now
                        }
                        guard endpointsExist else {
                            await self.signals.wakeup.wait(timeout: self.settings.idleCheck)
                            continue
                        }
                        let busy = inFlight.withLock { $0 }
                        // Outcomes waiting to be written hold claims back, as attempts in flight do.
                        let room = recorder.isFull ? 0 : self.settings.maximumInFlight - busy.values.reduce(0, +)
                        var claimed: [ClaimedMessage] = []
                        if room > 0 {
                            do {
                                claimed = try await self.store.claimDue(
                                    limit: room,
                                    perEndpoint: self.settings.perEndpoint,
                                    inFlight: busy,
                                    lease: self.settings.lease
                                )
                            } catch {
                                self.logger.warning("could not claim webhook messages", metadata: ["error": "\(error)"])
                            }
                        }
                        for message in claimed {
                            inFlight.withLock { $0[message.endpointID, default: 0] += 1 }
                            group.addTask {
                                await self.deliver(message, recordingWith: recorder)
                                inFlight.withLock { counts in
                                    counts[message.endpointID, default: 1] -= 1
                                    if counts[message.endpointID] == 0 { counts[message.endpointID] = nil }
                                }
                                self.signals.wakeup.signal()
                            }
                        }
                        // Maybe more due: at once. With no room (every slot taken, or outcomes waiting to
                        // be written), an attempt's end or a write wakes the loop instead.
                        if room > 0 && claimed.count == room { continue }
                        // While attempts are in flight each one's end wakes the loop, so it need not
                        // ask when the next retry falls due (a query each time): at most a second late.
                        let attempting = inFlight.withLock { !$0.isEmpty }
                        await self.signals.wakeup.wait(
                            timeout: attempting ? min(self.settings.idleCheck, .seconds(1)) : await self.untilNextDue()
                        )
                    }
                } onGracefulShutdown: {
                    stopping.withLock { $0 = true }
                    self.signals.wakeup.signal()
                }
                // Attempts still in flight are abandoned: their leases run out and they are sent
                // again (by another instance, or this one when it is back).
                group.cancelAll()
            }
            // What ended before the cancellation is written; then the recorder returns.
            recorder.close()
        }
        await self.sender.shutdown()
    }

    /// How long to sleep when nothing was claimable: until the next retry, at most `idleCheck`.
    private func untilNextDue() async -> Duration {
        guard let due = try? await self.store.nextDue() else { return self.settings.idleCheck }
        let wait = due.timeIntervalSince(self.now())
        // Due already but not claimed: its endpoint is at its limit here; an attempt's end wakes us.
        guard wait > 0 else { return self.settings.idleCheck }
        return min(.milliseconds(Int64(wait * 1_000) + 1), self.settings.idleCheck)
    }

    private func deliver(_ message: ClaimedMessage, recordingWith recorder: AttemptRecorder) async {
        let response = await self.sender.send(
            url: message.url,
            id: message.id,
            payload: message.payload,
            secrets: message.secrets.compactMap(WebhookSecret.init),
            timestamp: Int64(self.now().timeIntervalSince1970)
        )
        let failedAttempts = message.previousAttempts + 1
        let next: AttemptOutcome.Next
        if response.succeeded {
            next = .delivered
        } else if response.statusCode == 410 {
            next = .disableEndpoint
        } else if let delay = self.settings.schedule.delay(
            afterFailedAttempts: failedAttempts,
            retryAfter: response.retryAfter,
            random: Double.random(in: 0..<1)
        ) {
            next = .retry(after: delay)
        } else {
            next = .exhausted
        }
        self.metrics.merchantWebhookAttempt(outcome: response.succeeded ? "delivered" : "failed")
        let outcome = AttemptOutcome(
            next: next,
            statusCode: response.statusCode,
            responseBody: response.body,
            error: response.error,
            duration: response.duration
        )
        // While the lease holds, less a margin: given up, the message goes out again after it.
        recorder.record(outcome, of: message, within: self.settings.lease - response.duration - .seconds(2))
    }
}

/// What wakes the dispatcher: events committed (here or, by notification, elsewhere), an attempt
/// ended, or an endpoint changed through this instance's API.
final class DispatcherSignals: Sendable {
    let wakeup = Wakeup()
    private let endpointsChanged = Mutex(false)

    func eventsCommitted() { self.wakeup.signal() }

    /// An endpoint was made, changed or given messages again: look again whether any is enabled.
    func endpointsDidChange() {
        self.endpointsChanged.withLock { $0 = true }
        self.wakeup.signal()
    }

    func takeEndpointsChanged() -> Bool {
        self.endpointsChanged.withLock { changed in
            defer { changed = false }
            return changed
        }
    }
}

/// Wakes a waiting task; a signal given while nobody waits is kept for the next wait.
final class Wakeup: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when signalled (or at once, if a signal came since the last wait): `true`; or after
    /// `timeout`: `false`. A signal that comes as the timeout ends may be taken by this wait
    /// either way, so a caller looks for work after every wait.
    @discardableResult
    func wait(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitForSignal()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let signalled = await group.next() ?? false
            group.cancelAll()
            return signalled
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
