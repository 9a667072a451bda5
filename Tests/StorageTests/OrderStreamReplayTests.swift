import EventLog
import Foundation
import Payments
import SSEGateway
import Storage
import Testing

/// Order streams over the real log: where their start and their replay meet commits.
@Suite("Order stream replays")
struct OrderStreamReplayTests {
    private struct AcceptingSink: StreamSink {
        func send(_ text: String) -> Bool { true }
    }

    /// Reproducer: a matching payment after the order was canceled finishes it again. When it
    /// committed after a stream's start was read but before its replay, the replay read both
    /// `finish` events and ended the stream at the canceled one, with `succeeded` already read.
    @Test func aFinishCommittedDuringTheReplaySupersedesTheEarlierOne() async throws {
        try await withStore { store, _ in
            let order = created(
                try await store.create(newOrder(), idempotencyKey: nil, requestHash: String(repeating: "a", count: 64))
            )
            _ = try await store.cancel(orderID: order.id)
            let streams = OrderStreams(
                hub: StreamHub(
                    limits: StreamLimits(total: 10, perAddress: 10, perOrder: 10),
                    policy: StreamPolicy(bufferSize: 64)
                ),
                log: store,
                settings: StreamSettings()
            )
            let opening = try await streams.open(
                orderID: order.id,
                lastEventID: nil,
                clientAddress: "127.0.0.1",
                onOverflow: {}
            )
            guard case .stream(let session) = opening else {
                Issue.record("the stream did not open")
                return
            }
            // The payment after the end commits now: after the stream's start, before its replay.
            #expect(try await store.record(delivery("evt_late", order: order.id, .succeeded)) == .applied)
            var written = ""
            let end = try await session.start(
                write: { written += $0 },
                sink: AcceptingSink(),
                onEnd: { _ in }
            )
            #expect(end == .finished)
            let finishes = written.components(separatedBy: "event: finish\n").dropFirst()
            #expect(finishes.count == 1)
            #expect(finishes.first?.contains(#""status": "succeeded""#) == true, "\(written)")
        }
    }
}
