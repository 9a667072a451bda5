/// One statement and its parameters, to be sent with others in a ``Batch``.
public struct Statement {
    let sql: String
    let parameters: [any PostgresEncodable]

    public init(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}

/// Statements sent to the server together, in one round trip, and how to read what they return.
///
/// Batches compose: `a.and(b)` sends `a`'s statements, then `b`'s, and reads each part from its
/// own results. ``Connection/run(_:)`` sends one; ``Connection/transaction(isolation:opening:then:)``
/// sends two, the second decided from the first's results.
///
/// ```swift
/// let lock = Batch(Statement("SELECT status FROM orders WHERE id = $1 FOR UPDATE", [id])) { $0.first }
/// ```
public struct Batch<Value> {
    let statements: [Statement]
    private let read: ([QueryResult]) throws -> Value

    /// Statements whose results, one per statement and in order, `read` turns into the value.
    public init(_ statements: [Statement], read: @escaping ([QueryResult]) throws -> Value) {
        self.statements = statements
        self.read = read
    }

    /// One statement and how to read its rows.
    public init(_ statement: Statement, read: @escaping (QueryResult) throws -> Value) {
        self.init([statement]) { try read($0[0]) }
    }

    /// No statement: the value is known already.
    public static func constant(_ value: Value) -> Self {
        Self([]) { _ in value }
    }

    /// This batch's statements, then `other`'s.
    public func and<Other>(_ other: Batch<Other>) -> Batch<(Value, Other)> {
        let count = self.statements.count
        return Batch<(Value, Other)>(self.statements + other.statements) { results in
            (try self.read(Array(results[..<count])), try other.read(Array(results[count...])))
        }
    }

    /// The same statements, their value transformed.
    public func map<New>(_ transform: @escaping (Value) throws -> New) -> Batch<New> {
        Batch<New>(self.statements) { try transform(try self.read($0)) }
    }

    /// Reads the value from the statements' results.
    func value(from results: [QueryResult]) throws -> Value {
        try self.read(results)
    }
}

extension Batch where Value == Void {
    /// Statements whose results are not read (an error in any of them still throws).
    public init(_ statements: [Statement]) {
        self.init(statements) { _ in }
    }
}
