/// The rows a statement returned, copied out of libpq's result so they can outlive the connection
/// and cross threads.
public struct QueryResult: Sendable, RandomAccessCollection {
    /// A result column: its name and type.
    struct Column: Sendable, Hashable {
        let name: String
        let type: PostgresType
    }

    let columns: [Column]
    /// The number of rows the statement inserted, updated, deleted or selected, from its command tag.
    let affectedRows: Int
    /// The command tag, such as `INSERT 0 1` or `COMMIT`.
    let commandTag: String

    /// Every cell's bytes, row after row, in one buffer.
    let storage: [UInt8]
    /// `cells[row * columns.count + column]` is the cell's range in ``storage``, or nil for NULL.
    let cells: [Range<Int>?]

    public var startIndex: Int { 0 }
    public var endIndex: Int { self.columns.isEmpty ? 0 : self.cells.count / self.columns.count }

    public subscript(position: Int) -> Row { Row(result: self, index: position) }

    /// The column's position, by name (the first one when several share it).
    func columnIndex(named name: String) -> Int? {
        self.columns.firstIndex { $0.name == name }
    }
}

/// One row of a ``QueryResult``; read cells with ``decode(_:at:)`` or ``decode(_:column:)``.
public struct Row: Sendable {
    let result: QueryResult
    let index: Int

    /// Reads the cell at a column position as `T`. Reading `NULL` needs an optional `T`.
    public func decode<T: PostgresDecodable>(_: T.Type = T.self, at column: Int) throws(PostgresError) -> T {
        precondition(column >= 0 && column < self.result.columns.count, "column \(column) out of range")
        let info = self.result.columns[column]
        do {
            guard let range = self.result.cells[self.index * self.result.columns.count + column] else {
                return try T.postgresNull()
            }
            return try T(postgresBytes: self.result.storage[range], type: info.type)
        } catch {
            throw PostgresError(kind: .decoding, message: "column \"\(info.name)\": \(error.reason)")
        }
    }

    /// Reads the cell of the named column as `T`.
    package func decode<T: PostgresDecodable>(_: T.Type = T.self, column name: String) throws(PostgresError) -> T {
        guard let column = self.result.columnIndex(named: name) else {
            throw PostgresError(kind: .decoding, message: "no column \"\(name)\" in the result")
        }
        return try self.decode(T.self, at: column)
    }
}
