import Foundation

/// A notification on ``OrderStore/notificationChannel``: these orders' logs grew. It names orders
/// only; the relays read the events from the log, which is the truth.
public struct Announcement: Sendable, Hashable {
    public let orderIDs: [String]

    /// Reads a payload as ``ChangeNotifier`` writes it; `nil` for anything else.
    public init?(payload: String) {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(payload.utf8)) else { return nil }
        self.orderIDs = wire.orders
    }

    /// The payloads that name `orderIDs`, each at most `maximumBytes` long.
    static func payloads(for orderIDs: [String], maximumBytes: Int) -> [String] {
        let encoder = JSONEncoder()
        var payloads: [String] = []
        var batch: [String] = []
        var size = #"{"orders":[]}"#.utf8.count
        func flush() {
            guard !batch.isEmpty, let data = try? encoder.encode(Wire(orders: batch)) else { return }
            payloads.append(String(decoding: data, as: UTF8.self))
            batch.removeAll()
            size = #"{"orders":[]}"#.utf8.count
        }
        for id in orderIDs {
            // Quotes and a comma around each id; our ids need no escaping (the schema's CHECK).
            let cost = id.utf8.count + 3
            if size + cost > maximumBytes { flush() }
            batch.append(id)
            size += cost
        }
        flush()
        return payloads
    }

    private struct Wire: Codable {
        let orders: [String]
    }
}
