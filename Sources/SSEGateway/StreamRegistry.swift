/// How many streams a hub admits.
public struct StreamLimits: Sendable, Hashable {
    public var total: Int
    public var perAddress: Int
    /// Streams of one key (an order).
    public var perOrder: Int

    public init(total: Int, perAddress: Int, perOrder: Int) {
        self.total = total
        self.perAddress = perAddress
        self.perOrder = perOrder
    }

    /// `total` streams, however many from one address or for one key.
    public static func total(_ total: Int) -> Self {
        Self(total: total, perAddress: .max, perOrder: .max)
    }
}

/// Why a stream was not admitted.
public enum StreamRefusal: Error, Sendable, Hashable {
    /// The instance holds as many streams as it may (another instance may have room).
    case instanceFull
    case tooManyFromAddress
    case tooManyForOrder
    /// The hub is closed (shutdown).
    case closed
}

/// The streams a hub or feed admitted, as a value: each one's entry by registration id, the ids
/// of each key (an order's streams), and the counts the ``StreamLimits`` are checked against. The
/// order hub and the ops feed each keep one under their lock; admission and its bookkeeping live
/// here once.
package struct StreamRegistry<Entry> {
    private struct Registered {
        let key: String?
        let address: String?
        var entry: Entry
    }

    package let limits: StreamLimits
    private var registered: [Int: Registered] = [:]
    /// Registration ids by key, for the streams that have one.
    package private(set) var byKey: [String: [Int]] = [:]
    private var perAddress: [String: Int] = [:]
    private var nextID = 0
    /// Closed registries admit nothing.
    package private(set) var isClosed = false

    package init(limits: StreamLimits) {
        self.limits = limits
    }

    /// Admits a stream within the limits; returns its registration id.
    package mutating func admit(key: String?, address: String?, _ entry: Entry) throws(StreamRefusal) -> Int {
        if self.isClosed { throw .closed }
        if self.registered.count >= self.limits.total { throw .instanceFull }
        if let address, self.perAddress[address, default: 0] >= self.limits.perAddress { throw .tooManyFromAddress }
        if let key, self.byKey[key, default: []].count >= self.limits.perOrder { throw .tooManyForOrder }
        let id = self.nextID
        self.nextID += 1
        self.registered[id] = Registered(key: key, address: address, entry: entry)
        if let key { self.byKey[key, default: []].append(id) }
        if let address { self.perAddress[address, default: 0] += 1 }
        return id
    }

    /// The entry of a registered stream.
    package subscript(id: Int) -> Entry? {
        self.registered[id]?.entry
    }

    /// Changes a registered stream's entry in place; `nil` if it is not registered.
    package mutating func update<Result>(_ id: Int, _ body: (inout Entry) -> Result) -> Result? {
        guard self.registered[id] != nil else { return nil }
        return body(&self.registered[id]!.entry)
    }

    /// Forgets a stream; returns its entry and key, if it was registered.
    @discardableResult
    package mutating func remove(_ id: Int) -> (entry: Entry, key: String?)? {
        guard let stream = self.registered.removeValue(forKey: id) else { return nil }
        if let address = stream.address {
            self.perAddress[address, default: 1] -= 1
            if self.perAddress[address] == 0 { self.perAddress[address] = nil }
        }
        if let key = stream.key {
            self.byKey[key]?.removeAll { $0 == id }
            if self.byKey[key]?.isEmpty == true { self.byKey[key] = nil }
        }
        return (stream.entry, stream.key)
    }

    /// Admits nothing more and forgets every stream; returns their entries.
    package mutating func close() -> [Entry] {
        self.isClosed = true
        defer {
            self.registered = [:]
            self.byKey = [:]
            self.perAddress = [:]
        }
        return self.registered.values.map(\.entry)
    }

    package var count: Int { self.registered.count }
}
