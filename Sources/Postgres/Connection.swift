import CLibPQ
import Glibc

/// One connection to PostgreSQL through libpq: parameterised statements, typed rows and
/// transactions.
///
/// Every method blocks until the server answers, so a `Connection` is used only from threads that
/// may block: the ``ConnectionPool``'s executor or the ``NotificationListener``'s own thread, never
/// Swift's cooperative pool or a NIO event loop.
///
/// - Important: A connection is used by one thread at a time. It is not `Sendable`; the pool hands
///   it from thread to thread under a lease, which orders those accesses.
///
/// ```swift
/// let result = try connection.query("SELECT status FROM orders WHERE id = $1", [orderID])
/// let status = try result.first?.decode(String.self, column: "status")
/// ```
public final class Connection {
    private let handle: OpaquePointer
    private var isClosed = false
    /// Statements prepared on this connection, by text and parameter types (a `NULL` has no type,
    /// so the same text with a `NULL` where a value was is another statement).
    private var prepared: [PreparedKey: String] = [:]
    /// Whether statements are prepared at all (``ConnectionConfiguration/PreparedStatements``).
    package private(set) var preparesStatements = true
    /// Begins every statement name this connection prepares. Random, so that if sessions were ever
    /// shared after all, a statement would be missing rather than another connection's.
    private let statementPrefix = "paynotify_\(String(UInt32.random(in: .min ... .max), radix: 36))_"

    private struct PreparedKey: Hashable {
        let sql: String
        let types: [Oid]
    }

    /// A connection keeps at most this many prepared statements; past it, statements run unprepared.
    /// The service's own statements are far fewer; the bound keeps ad-hoc SQL from growing it.
    static let maximumPrepared = 256

    private init(handle: OpaquePointer) {
        self.handle = handle
        // libpq prints notices (such as "relation already exists, skipping") to stderr by default;
        // they carry nothing the service acts on, so they are dropped here.
        PQsetNoticeReceiver(handle, { _, _ in }, nil)
    }

    deinit {
        if !self.isClosed { PQfinish(self.handle) }
    }

    /// Opens a connection, blocking until it is ready or has failed.
    ///
    /// - Throws: ``PostgresError/Kind/connectionFailed`` with libpq's message.
    package static func connect(_ configuration: ConnectionConfiguration) throws(PostgresError) -> Connection {
        let settings = configuration.keywordsAndValues
        let handle = withCStringArray(settings.map(\.keyword)) { keywords in
            withCStringArray(settings.map(\.value)) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let handle else {
            throw PostgresError(kind: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingTrailingWhitespace()
            PQfinish(handle)
            throw PostgresError(kind: .connectionFailed, message: message)
        }
        let connection = Connection(handle: handle)
        switch configuration.preparedStatements {
        case .on: break
        case .off: connection.preparesStatements = false
        case .automatic: connection.preparesStatements = try connection.reachesTheServerItself()
        }
        return connection
    }

    /// True when the session's backend is the process the connection was told at start-up: no
    /// pooler in between, which answers start-up with a key of its own.
    package func reachesTheServerItself() throws(PostgresError) -> Bool {
        let pid = try self.consume(PQexecParams(self.handle, "SELECT pg_backend_pid()", 0, nil, nil, nil, nil, 1))
        return try pid.first?.decode(Int.self, at: 0) == Int(PQbackendPID(self.handle))
    }

    /// Closes the connection (idempotent). libpq sends a Terminate message without waiting for an answer.
    package func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        PQfinish(self.handle)
    }

    /// The server process serving this connection (what `pg_terminate_backend` takes).
    package var backendPID: Int32 { PQbackendPID(self.handle) }

    /// Runs one statement with parameters bound to `$1`, `$2`, … and returns its rows.
    ///
    /// Parameters never become part of the SQL text, so quotes or `'; DROP TABLE` in a value are
    /// just data. Results are read in binary format. The statement is prepared on this connection
    /// the first time it runs (per parameter types), and later runs skip parsing and planning:
    /// measured in BENCHMARKS.md, the parser was the server's largest cost per webhook.
    ///
    /// - Throws: ``PostgresError/Kind/server`` with the SQLSTATE when the server refuses the
    ///   statement; ``PostgresError/Kind/connectionBroken`` when the connection fails under it.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) throws(PostgresError) -> QueryResult {
        let bindings = parameters.map(\.postgresBinding)
        let name = try self.preparedName(sql, bindings)
        let result = try withParameterArrays(bindings) { types, values, lengths, formats in
            if let name {
                PQexecPrepared(self.handle, name, Int32(bindings.count), values, lengths, formats, 1)
            } else {
                PQexecParams(self.handle, sql, Int32(bindings.count), types, values, lengths, formats, 1)
            }
        }
        return try self.consume(result)
    }

    /// Sends the batch's statements together and reads its value from their results.
    ///
    /// More than one statement goes in libpq's pipeline mode (PostgreSQL 14+): all of them, then
    /// one Sync, in one round trip instead of one per statement. The server runs them in order;
    /// when one fails it skips the rest up to the Sync, and the first error is thrown. Outside a
    /// transaction the batch is one implicit transaction (a failure undoes all of it); inside one,
    /// the failure leaves the transaction failed, as it would sequentially.
    ///
    /// The pipeline is written whole before its results are read; when the socket is full, libpq
    /// reads what the server sent while it waits to write, so a long batch cannot deadlock.
    @discardableResult
    public func run<Value>(_ batch: Batch<Value>) throws -> Value {
        try batch.value(from: try self.pipeline(batch.statements))
    }

    private func pipeline(_ statements: [Statement]) throws(PostgresError) -> [QueryResult] {
        if statements.count <= 1 {
            return try statements.first.map { statement throws(PostgresError) in
                [try self.query(statement.sql, statement.parameters)]
            } ?? []
        }
        let bindings = statements.map { $0.parameters.map(\.postgresBinding) }
        // Preparing waits for the server, which pipeline mode does not allow: new statements are
        // prepared first (once per connection).
        var names: [String?] = []
        for (statement, binding) in zip(statements, bindings) {
            names.append(try self.preparedName(statement.sql, binding))
        }
        guard PQenterPipelineMode(self.handle) == 1 else { throw self.connectionError(kind: .connectionBroken) }
        do throws(PostgresError) {
            for ((statement, binding), name) in zip(zip(statements, bindings), names) {
                let sent = try withParameterArrays(binding) { types, values, lengths, formats in
                    if let name {
                        PQsendQueryPrepared(self.handle, name, Int32(binding.count), values, lengths, formats, 1)
                    } else {
                        PQsendQueryParams(
                            self.handle,
                            statement.sql,
                            Int32(binding.count),
                            types,
                            values,
                            lengths,
                            formats,
                            1
                        )
                    }
                }
                guard sent == 1 else { throw self.connectionError(kind: .connectionBroken) }
            }
            guard PQpipelineSync(self.handle) == 1 else { throw self.connectionError(kind: .connectionBroken) }
            return try self.pipelineResults(count: statements.count)
        } catch {
            // A pipeline that did not reach its end leaves libpq's state unknown: the connection
            // closes, and the pool replaces it.
            if error.kind == .connectionBroken || PQpipelineStatus(self.handle) != PQ_PIPELINE_OFF { self.close() }
            throw error
        }
    }

    /// Reads one result per statement, then the Sync's, and leaves pipeline mode; throws the first
    /// statement's error once the pipeline has ended.
    private func pipelineResults(count: Int) throws(PostgresError) -> [QueryResult] {
        var results: [QueryResult] = []
        var firstError: PostgresError?
        for _ in 0..<count {
            guard let result = PQgetResult(self.handle) else { throw self.connectionError(kind: .connectionBroken) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                results.append(QueryResult(copying: result))
            case PGRES_PIPELINE_ABORTED:
                break
            default:
                firstError = firstError ?? self.serverError(from: result)
            }
            PQclear(result)
            // Each statement's results end with a null.
            guard PQgetResult(self.handle) == nil else {
                throw PostgresError(kind: .connectionBroken, message: "a pipelined statement returned several results")
            }
        }
        guard let sync = PQgetResult(self.handle) else { throw self.connectionError(kind: .connectionBroken) }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced, PQexitPipelineMode(self.handle) == 1 else {
            throw firstError ?? self.connectionError(kind: .connectionBroken)
        }
        if let firstError { throw firstError }
        return results
    }

    /// The name of the statement prepared for `sql` with these parameter types, preparing it on
    /// first use; `nil` once the connection holds ``maximumPrepared``.
    private func preparedName(_ sql: String, _ bindings: [PostgresBinding]) throws(PostgresError) -> String? {
        let key = PreparedKey(sql: sql, types: bindings.map(\.type.rawValue))
        if let name = self.prepared[key] { return name }
        guard self.preparesStatements, self.prepared.count < Self.maximumPrepared else { return nil }
        let name = self.statementPrefix + String(self.prepared.count + 1)
        try self.consume(PQprepare(self.handle, name, sql, Int32(key.types.count), key.types))
        self.prepared[key] = name
        return name
    }

    /// Runs one statement and returns how many rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [any PostgresEncodable] = []) throws(PostgresError) -> Int {
        try self.query(sql, parameters).affectedRows
    }

    /// Runs trusted SQL text that may hold several statements and no parameters, such as a migration
    /// file. Never pass it text built from input: use ``query(_:_:)``.
    func executeScript(_ sql: String) throws(PostgresError) {
        try self.consume(PQexec(self.handle, sql))
    }

    /// Quotes a name for use as an SQL identifier (for statements such as `LISTEN` that take no parameters).
    func quoteIdentifier(_ name: String) throws(PostgresError) -> String {
        guard let quoted = PQescapeIdentifier(self.handle, name, name.utf8.count) else {
            throw self.connectionError(kind: .invalidParameter)
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    // MARK: Connection state

    /// True while libpq considers the connection good and no transaction is left open on it.
    var isReusable: Bool {
        !self.isClosed && PQstatus(self.handle) == CONNECTION_OK
            && PQtransactionStatus(self.handle) == PQTRANS_IDLE && PQpipelineStatus(self.handle) == PQ_PIPELINE_OFF
    }

    /// True while a transaction is open (or failed and not yet rolled back) on a good connection.
    var isInTransaction: Bool {
        !self.isClosed && [PQTRANS_INTRANS, PQTRANS_INERROR].contains(PQtransactionStatus(self.handle))
    }

    /// Checks, without waiting, that an idle connection is still alive.
    ///
    /// An idle connection has nothing to read. When its socket is readable anyway, the server has
    /// either sent an error before closing (terminated backend, server shutdown) or closed it; the
    /// input is consumed until libpq sees the end, and the connection reports itself broken.
    func isAliveWhenIdle() -> Bool {
        guard self.isReusable else { return false }
        while self.socketIsReadable() {
            guard PQconsumeInput(self.handle) == 1, PQstatus(self.handle) == CONNECTION_OK else { return false }
            // Asynchronous messages (notices, parameter changes) are harmless; a closed socket stays
            // readable, so the loop ends either when it drains or when libpq reports the connection bad.
            while let notification = PQnotifies(self.handle) { PQfreemem(notification) }
        }
        return PQstatus(self.handle) == CONNECTION_OK
    }

    /// The socket descriptor, for waiting on it with `poll`.
    var socket: Int32 { PQsocket(self.handle) }

    /// Reads what the server sent without blocking. False when the connection is broken.
    func consumeInput() -> Bool {
        PQconsumeInput(self.handle) == 1 && PQstatus(self.handle) == CONNECTION_OK
    }

    /// The next notification read by ``consumeInput()``, if any.
    func nextNotification() -> NotificationListener.Notification? {
        guard let raw = PQnotifies(self.handle) else { return nil }
        defer { PQfreemem(raw) }
        return NotificationListener.Notification(
            channel: String(cString: raw.pointee.relname),
            payload: String(cString: raw.pointee.extra),
            backendPID: raw.pointee.be_pid
        )
    }

    /// libpq's last error message for this connection, as an error of the given kind.
    func connectionError(kind: PostgresError.Kind) -> PostgresError {
        let message = String(cString: PQerrorMessage(self.handle)).trimmingTrailingWhitespace()
        return PostgresError(kind: kind, message: message.isEmpty ? "connection failed" : message)
    }

    private func socketIsReadable() -> Bool {
        var descriptor = pollfd(fd: self.socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    /// Turns a `PGresult` into rows or an error, and frees it.
    @discardableResult
    private func consume(_ result: OpaquePointer?) throws(PostgresError) -> QueryResult {
        guard let result else {
            throw self.connectionError(kind: .connectionBroken)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return QueryResult(copying: result)
        default:
            throw self.serverError(from: result)
        }
    }

    private func serverError(from result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let sqlState = field("C").map(SQLState.init(rawValue:))
        // Without an SQLSTATE the error came from libpq itself: the connection failed mid-statement.
        guard sqlState != nil, PQstatus(self.handle) == CONNECTION_OK else {
            let message = field("M") ?? String(cString: PQresultErrorMessage(result))
            return PostgresError(
                kind: .connectionBroken,
                message: message.trimmingTrailingWhitespace(),
                sqlState: sqlState
            )
        }
        return PostgresError(
            kind: .server,
            message: field("M") ?? "unknown server error",
            sqlState: sqlState,
            constraint: field("n")
        )
    }
}

@available(*, unavailable)
extension Connection: Sendable {}

extension QueryResult {
    /// Copies every cell out of a libpq result.
    fileprivate init(copying result: OpaquePointer) {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        self.columns = (0..<columnCount).map { column in
            Column(
                name: String(cString: PQfname(result, Int32(column))),
                type: PostgresType(rawValue: PQftype(result, Int32(column)))
            )
        }
        var storage: [UInt8] = []
        var cells: [Range<Int>?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                guard PQgetisnull(result, row, column) == 0 else {
                    cells.append(nil)
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                let start = storage.count
                PQgetvalue(result, row, column).withMemoryRebound(to: UInt8.self, capacity: length) {
                    storage.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                }
                cells.append(start..<storage.count)
            }
        }
        self.storage = storage
        self.cells = cells
        self.commandTag = String(cString: PQcmdStatus(result))
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

/// Calls `body` with a NULL-terminated array of C strings that live for the call.
private func withCStringArray<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { for pointer in pointers { free(pointer) } }
    pointers.append(nil)
    return body(pointers.map { UnsafePointer($0) })
}

/// Lays the parameters out as the four parallel arrays `PQexecParams` takes, all pointing into one
/// buffer that lives for the call.
private func withParameterArrays<R>(
    _ bindings: [PostgresBinding],
    _ body: ([Oid], [UnsafePointer<CChar>?], [Int32], [Int32]) -> R
) throws(PostgresError) -> R {
    var buffer: [UInt8] = []
    var offsets: [Int?] = []
    for (index, binding) in bindings.enumerated() {
        guard let bytes = binding.bytes else {
            offsets.append(nil)
            continue
        }
        if binding.format == .text {
            // Text values travel as C strings, so a NUL would cut them short; PostgreSQL text cannot hold one anyway.
            guard !bytes.contains(0) else {
                throw PostgresError(
                    kind: .invalidParameter,
                    message: "text parameter $\(index + 1) contains a NUL byte"
                )
            }
        }
        offsets.append(buffer.count)
        buffer.append(contentsOf: bytes)
        if binding.format == .text { buffer.append(0) }
    }
    // One spare byte so the buffer's address exists even when every value is empty.
    buffer.append(0)
    let types = bindings.map(\.type.rawValue)
    let lengths = bindings.map { Int32($0.bytes?.count ?? 0) }
    let formats = bindings.map(\.format.rawValue)
    return buffer.withUnsafeBufferPointer { storage in
        let base = UnsafeRawPointer(storage.baseAddress!)
        let values = offsets.map { offset in offset.map { (base + $0).assumingMemoryBound(to: CChar.self) } }
        return body(types, values, lengths, formats)
    }
}
