import NIOPosix
import PayNotifyClient
import TestSupport
import Testing

@testable import LoadGenerator

/// The load generator's stream fleet against a real server: what `make bench` counts as opened,
/// reconnected, lost and duplicated must be what happened.
@Suite("Load generator's stream fleet")
struct LoadGeneratorFleetTests {
    /// Streams open a few at a time from the event loops; one refused (a wrong token) counts as not
    /// opened and the others still do; after a drop, every stream that was open reconnects with
    /// its Last-Event-ID and gets what was sent meanwhile, once.
    @Test func opensCountsAndReconnects() async throws {
        try await withLiveApp { client, _ in
            var orders: [Target.Order] = []
            for _ in 0..<6 {
                let order = try await client.createOrder()
                orders.append(Target.Order(id: order.id, token: order.token))
            }
            orders.append(Target.Order(id: orders[0].id, token: "v1.1.wrong"))
            let target = try Target(
                host: "127.0.0.1",
                port: client.port,
                apiKey: TestConfiguration.apiKey,
                sandboxSecret: TestConfiguration.sandboxSecret,
                adminToken: nil,
                serverPID: nil,
                group: .singleton
            )
            let fleet = StreamFleet(target: target, orders: orders)
            let first = await fleet.connectAll(concurrency: 2)
            #expect(first.opened == 6)

            await fleet.disconnectAll()
            for order in orders.prefix(3) { try await client.sandbox("processing", order: order.id) }
            let again = await fleet.connectAll(concurrency: 7)
            #expect(again.opened == 6)
            try await eventually("the missed events arrive") {
                fleet.members.prefix(3).allSatisfy { $0.receivedIDs.count == 1 }
            }
            #expect(fleet.members[3...].allSatisfy { $0.receivedIDs.isEmpty })
            #expect(fleet.duplicates == 0)
            await fleet.disconnectAll()
        }
    }
}
