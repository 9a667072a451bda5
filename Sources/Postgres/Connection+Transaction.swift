extension Connection {
    /// The isolation a transaction runs at.
    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` inside `BEGIN` … `COMMIT`, rolling back when it throws.
    ///
    /// A commit the server turns into a rollback (because a statement inside failed and the error
    /// was caught) throws too, so a caught error can never look like a committed transaction.
    public func transaction<T>(
        isolation: IsolationLevel? = nil,
        _ body: (Connection) throws -> T
    ) throws -> T {
        try self.rollingBackOnError {
            try self.execute(Self.begin(isolation).sql)
            let value = try body(self)
            try Self.checkCommitted(try self.query("COMMIT"))
            return value
        }
    }

    /// Runs a transaction that reads, decides, then writes, in two round trips: `BEGIN` goes with
    /// `opening`'s statements; `decide` turns what they read into the writes, which go with
    /// `COMMIT`. (One round trip when `opening` has no statement.) Rolls back when anything throws,
    /// as ``transaction(isolation:_:)`` does.
    ///
    /// A statement that fails skips the rest of its batch, `COMMIT` included, and its error is
    /// thrown: a write that depends on an earlier one in the same batch can count on it.
    public func transaction<Opened, Value>(
        isolation: IsolationLevel? = nil,
        opening: Batch<Opened>,
        then decide: (Opened) throws -> Batch<Value>
    ) throws -> Value {
        let begin = Batch(Self.begin(isolation)) { _ in }
        let commit = Batch(Statement("COMMIT"), read: Self.checkCommitted)
        return try self.rollingBackOnError {
            guard !opening.statements.isEmpty else {
                let closing = try decide(try opening.value(from: []))
                return try self.run(begin.and(closing).and(commit)).0.1
            }
            let opened = try self.run(begin.and(opening)).1
            return try self.run(try decide(opened).and(commit)).0
        }
    }

    private static func begin(_ isolation: IsolationLevel?) -> Statement {
        Statement(isolation.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN")
    }

    /// Throws when `COMMIT` answered with a rollback (a statement inside failed).
    private static func checkCommitted(_ result: QueryResult) throws {
        guard result.commandTag == "COMMIT" else {
            throw PostgresError(
                kind: .server,
                message: "the transaction was rolled back because a statement in it failed",
                sqlState: .inFailedTransaction
            )
        }
    }

    private func rollingBackOnError<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            // If the connection broke, the server has rolled back already; the original error matters.
            if self.isInTransaction { _ = try? self.execute("ROLLBACK") }
            throw error
        }
    }
}
