import EventLog
import Foundation

/// The names merchant notifications give order events (webhook messages and the merchant event
/// stream alike): `order.<status>` for a status event, `order.progress`, and the merchant's own
/// event names. `finish` only ends an order's stream, and an order's creation (`pending`) is the
/// merchant's own act: neither is sent. The outbox trigger
/// (`migrations/0004_merchant_webhooks.sql`) names them the same way in SQL.
enum EventTypes {
    /// The types a merchant may filter on besides its own event names.
    static let orderTypes = [
        "order.processing", "order.succeeded", "order.failed", "order.canceled", "order.expired",
        "order.refunded", "order.progress",
    ]

    /// The type of a logged event; `nil` for `finish` and creation.
    static func type(of event: OrderEvent) -> String? {
        switch event.name {
        case "finish":
            return nil
        case "progress":
            return "order.progress"
        case "status":
            struct Status: Decodable { let status: String }
            let status = try? JSONDecoder().decode(Status.self, from: Data(event.data.utf8)).status
            return status == "pending" ? nil : "order." + (status ?? "unknown")
        default:
            return event.name
        }
    }

    /// Checks a filter (1–64 of `*`, the order types, or names of the merchant's own events) and
    /// returns it sorted without repeats.
    static func validated(_ names: [String], field: String) throws -> [String] {
        guard (1...64).contains(names.count) else { throw invalid(field, "must list 1 to 64 event types") }
        for name in names where name != "*" && !Self.orderTypes.contains(name) {
            // A merchant's own event names, as `POST /v1/orders/{id}/events` accepts them.
            guard !name.hasPrefix("order."), (1...64).contains(name.count),
                name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) })
            else {
                throw invalid(
                    field,
                    "entry \"\(name)\" is not *, one of \(Self.orderTypes.joined(separator: ", ")), or an event name of your own (a-z, 0-9, . _ -)"
                )
            }
        }
        return Array(Set(names)).sorted()
    }
}
