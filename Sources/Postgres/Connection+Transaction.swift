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
        try self.execute(isolation.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN")
        let value: T
        do {
            value = try body(self)
        } catch {
            // If the connection broke, the server has rolled back already; the original error matters.
            _ = try? self.execute("ROLLBACK")
            throw error
        }
        let commit = try self.query("COMMIT")
        guard commit.commandTag == "COMMIT" else {
            throw PostgresError(
                kind: .server,
                message: "the transaction was rolled back because a statement in it failed",
                sqlState: .inFailedTransaction
            )
        }
        return value
    }
}
