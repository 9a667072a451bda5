import Foundation
import Synchronization
import TestSupport
import Testing

/// PostgreSQL failover under the drills' load: Patroni with etcd, two PostgreSQL 15 nodes in
/// synchronous mode (`TestPatroni`, test timings: ttl 10 s), both instances connected with the
/// multi-host URL `target_session_attrs=read-write`, streams and webhooks through nginx. The
/// listeners reconnect to the new primary and the relays re-read, so every committed event
/// reaches its streams; writes during the switch get a retryable 5xx, never a 2xx the new primary
/// does not have (`acknowledged_not_committed` is checked against it). Part of the drills' suite,
/// which runs one drill at a time.
extension DrillTests {
    @Test func patroniLeaderKilledThenSwitchover() async throws {
        try await TestPatroni.run { patroni in
            let database = try TestDatabase.existing(url: patroni.url)

            // (a) kill -9 of the leader's Patroni and PostgreSQL: the sync standby takes over once
            // the leader key expires.
            let killed = KilledNode()
            var report = try await Self.drill("patroni_leader_killed", database: database) { _ in
                let name = try await patroni.killLeader()
                killed.name.withLock { $0 = name }
            }
            let killedNode = killed.name.withLock { $0 }
            report.extra["killed"] = killedNode
            Self.expectClean(report)
            #expect(report.retryable5xx > 0, "the failover was not felt")
            #expect((report.recoverySeconds ?? .infinity) < 60, "webhooks were not acknowledged again")

            // The old leader rejoins as the sync standby, so the switchover has a candidate.
            try await patroni.restart(killedNode)
            try await patroni.waitForLeaderAndSyncStandby(within: .seconds(120))

            // (b) a planned switchover (`patronictl switchover`).
            report = try await Self.drill("patroni_switchover", database: database) { _ in
                try await patroni.switchover()
            }
            Self.expectClean(report)
            #expect((report.recoverySeconds ?? .infinity) < 60, "webhooks were not acknowledged again")
        }
    }
}

/// The node the fault killed, as the fault closure learns it.
private final class KilledNode: Sendable {
    let name = Mutex("")
}
