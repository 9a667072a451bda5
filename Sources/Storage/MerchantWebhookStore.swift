public import EventLog
public import Foundation
public import Postgres

/// Every SQL statement of merchant notifications: the endpoints, and the outbox of messages to them
/// (which the trigger of migration 0004 fills in the transaction that appends each event).
///
/// Delivery claims messages with `FOR UPDATE SKIP LOCKED` and a lease: a claimed message's
/// `leased_until` is set to the end of the lease (a column in no index, migration 0006), so if
/// the instance dies mid-attempt another claims it then; recording the attempt clears it.
/// Delivery is at least once; the message id (`webhook-id`) lets the merchant drop a repeat.
///
/// Claims and attempt outcomes commit without waiting for their WAL to reach the disk
/// (`synchronous_commit = off`, for those transactions only): a database crash may forget the
/// last fraction of a second of them, and a forgotten claim or outcome only means the message is
/// sent again, which at-least-once allows; a message itself is written, durably, with its event.
/// Waiting for the disk twice per attempt would bound one endpoint's deliveries by the disk.
public struct MerchantWebhookStore: Sendable {
    let pool: ConnectionPool
    /// Told of each alert raised (an exhausted message, a disabled endpoint), once committed.
    let onAlert: (@Sendable (Alert) -> Void)?

    public init(pool: ConnectionPool, onAlert: (@Sendable (Alert) -> Void)? = nil) {
        self.pool = pool
        self.onAlert = onAlert
    }

    // MARK: Endpoints

    public func createEndpoint(url: String, events: [String], description: String?, secret: String) async throws
        -> WebhookEndpoint
    {
        let id = "we_" + OrderID.generate().dropFirst(4)
        let events = try Self.json(events)
        return try await self.pool.withConnection { connection in
            try Self.endpoint(
                from: connection.query(
                    """
                    INSERT INTO webhook_endpoints (id, url, events, description, secret)
                    VALUES ($1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4, $5)
                    RETURNING \(Self.endpointColumns)
                    """,
                    [id, url, events, description, secret]
                ).first!
            )
        }
    }

    /// Every endpoint, oldest first.
    public func endpoints() async throws -> [WebhookEndpoint] {
        try await self.pool.withConnection { connection in
            try connection.query("SELECT \(Self.endpointColumns) FROM webhook_endpoints ORDER BY created_at, id")
                .map(Self.endpoint(from:))
        }
    }

    public func endpoint(id: String) async throws -> WebhookEndpoint? {
        try await self.pool.withConnection { connection in
            try connection.query("SELECT \(Self.endpointColumns) FROM webhook_endpoints WHERE id = $1", [id])
                .first.map(Self.endpoint(from:))
        }
    }

    /// Applies a change; `nil` when there is no such endpoint. Enabling an endpoint clears why it
    /// was disabled and its failure clock.
    public func updateEndpoint(id: String, _ change: WebhookEndpointChange) async throws -> WebhookEndpoint? {
        let events = try change.events.map(Self.json)
        let description: String? = change.description ?? nil
        return try await self.pool.withConnection { connection in
            try connection.query(
                """
                UPDATE webhook_endpoints SET
                    url = coalesce($2, url),
                    events = CASE WHEN $3::jsonb IS NULL THEN events ELSE ARRAY(SELECT jsonb_array_elements_text($3::jsonb)) END,
                    description = CASE WHEN $4 THEN $5 ELSE description END,
                    enabled = coalesce($6, enabled),
                    disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
                    failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
                    updated_at = now()
                WHERE id = $1
                RETURNING \(Self.endpointColumns)
                """,
                [id, change.url, events, change.description != nil, description, change.enabled]
            ).first.map(Self.endpoint(from:))
        }
    }

    /// Deletes an endpoint and its messages; false when there was none.
    public func deleteEndpoint(id: String) async throws -> Bool {
        try await self.pool.withConnection { connection in
            try connection.execute("DELETE FROM webhook_endpoints WHERE id = $1", [id]) == 1
        }
    }

    /// Gives the endpoint a new secret; the current one keeps signing beside it for `overlap`.
    public func rotateSecret(id: String, newSecret: String, overlap: Duration) async throws -> WebhookEndpoint? {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                UPDATE webhook_endpoints SET
                    previous_secret = secret, secret = $2,
                    previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now()
                WHERE id = $1
                RETURNING \(Self.endpointColumns)
                """,
                [id, newSecret, overlap.seconds]
            ).first.map(Self.endpoint(from:))
        }
    }

    // MARK: Visibility and replay

    /// An endpoint's attempts, newest first, below the attempt id `before` when given, at most
    /// `limit`; only those that succeeded or failed when `succeeded` says so.
    public func attempts(endpointID: String, succeeded: Bool?, before: Int64?, limit: Int) async throws
        -> [WebhookAttempt]
    {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT id, message_id, attempted_at, duration_ms, succeeded, status_code, response_body, error
                FROM webhook_attempts
                WHERE endpoint_id = $1 AND ($2::bool IS NULL OR succeeded = $2) AND id < coalesce($3, 9223372036854775807)
                ORDER BY id DESC LIMIT $4
                """,
                [endpointID, succeeded, before, limit]
            ).map { row in
                WebhookAttempt(
                    id: try row.decode(Int64.self, at: 0),
                    messageID: try row.decode(String.self, at: 1),
                    attemptedAt: try row.decode(Date.self, at: 2),
                    durationMilliseconds: try row.decode(Int64.self, at: 3),
                    succeeded: try row.decode(Bool.self, at: 4),
                    statusCode: try row.decode(Int64?.self, at: 5),
                    responseBody: try row.decode(String?.self, at: 6),
                    error: try row.decode(String?.self, at: 7)
                )
            }
        }
    }

    /// Queues a message again, delivered or not, with the whole schedule ahead of it; `false` when
    /// there is no such message.
    public func resend(messageID: String) async throws -> Bool {
        try await self.pool.withConnection { connection in
            try connection.execute(
                "UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE id = $1",
                [messageID]
            ) == 1
        }
    }

    /// Queues again every message of the endpoint that failed for good and was written in
    /// `since..<until` (until now when `nil`); returns how many.
    public func recover(endpointID: String, since: Date, until: Date?) async throws -> Int {
        try await self.pool.withConnection { connection in
            try connection.execute(
                """
                UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = now()
                WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2 AND created_at < coalesce($3, now())
                """,
                [endpointID, since, until]
            )
        }
    }

    /// Each endpoint's health, oldest endpoint first, at most `limit`: what the ops page and the
    /// metrics show.
    public func endpointHealth(limit: Int) async throws -> [WebhookEndpointHealth] {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT e.id, e.url, e.enabled, e.failing_since, e.last_success_at, count(m.id),
                    extract(epoch FROM now() - min(m.created_at))::float8
                FROM webhook_endpoints AS e
                LEFT JOIN webhook_messages AS m ON m.endpoint_id = e.id AND m.status = 'pending'
                GROUP BY e.id ORDER BY e.created_at, e.id LIMIT $1
                """,
                [limit]
            ).map { row in
                WebhookEndpointHealth(
                    id: try row.decode(String.self, at: 0),
                    url: try row.decode(String.self, at: 1),
                    enabled: try row.decode(Bool.self, at: 2),
                    failingSince: try row.decode(Date?.self, at: 3),
                    lastSuccessAt: try row.decode(Date?.self, at: 4),
                    backlog: Int(try row.decode(Int64.self, at: 5)),
                    oldestPendingSeconds: try row.decode(Double?.self, at: 6)
                )
            }
        }
    }

    // MARK: Delivery

    /// Claims up to `limit` due messages of enabled endpoints, at most `perEndpoint` of each less
    /// what this instance already has in flight there (`inFlight`), oldest due first, and leases
    /// them for `lease`.
    public func claimDue(limit: Int, perEndpoint: Int, inFlight: [String: Int], lease: Duration) async throws
        -> [ClaimedMessage]
    {
        let busy = try Self.json(inFlight.map { ["endpoint_id": $0.key, "in_flight": String($0.value)] })
        // Two round trips: BEGIN and the claim, then COMMIT.
        return try await self.pool.withConnection { connection in
            let claim = Batch(
                Statement(
                    """
                    WITH busy AS (
                        SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(endpoint_id text, in_flight text)
                    ), due AS (
                        SELECT d.id FROM webhook_endpoints AS e
                        LEFT JOIN busy AS b ON b.endpoint_id = e.id
                        CROSS JOIN LATERAL (
                            SELECT m.id FROM webhook_messages AS m
                            WHERE m.endpoint_id = e.id AND m.status = 'pending' AND m.next_attempt_at <= now()
                                AND \(Self.notLeased)
                            ORDER BY m.next_attempt_at
                            LIMIT greatest(0, $2 - coalesce(b.in_flight::int, 0))
                            FOR UPDATE SKIP LOCKED
                        ) AS d
                        WHERE e.enabled
                        LIMIT $3
                    )
                    UPDATE webhook_messages AS m
                    SET leased_until = now() + make_interval(secs => $4)
                    FROM due, webhook_endpoints AS e
                    WHERE m.id = due.id AND e.id = m.endpoint_id
                    RETURNING m.id, m.endpoint_id, e.url, m.payload, m.attempts, e.secret,
                        CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
                    """,
                    [busy, perEndpoint, limit, lease.seconds]
                )
            ) { result in
                try result.map { row in
                    ClaimedMessage(
                        id: try row.decode(String.self, at: 0),
                        endpointID: try row.decode(String.self, at: 1),
                        url: try row.decode(String.self, at: 2),
                        payload: try row.decode(String.self, at: 3),
                        previousAttempts: Int(try row.decode(Int64.self, at: 4)),
                        secrets: [try row.decode(String.self, at: 5)]
                            + [try row.decode(String?.self, at: 6)].compactMap { $0 }
                    )
                }
            }
            return try connection.transaction(
                isolation: .readCommitted,
                opening: Batch<Void>([Self.commitWithoutWaitingForDisk]).and(claim)
            ) { opened in .constant(opened.1) }
        }
    }

    /// Records attempts and what follows each, in one transaction: the message delivered, due
    /// again, or failed for good; each endpoint's health; an alert for each message exhausted and
    /// each endpoint disabled (by `410 Gone`, or by failing everything for `disableAfter` with at
    /// least 12 hours between its first and last failure). `attempts` are in the order they ended:
    /// an endpoint's health follows its last one.
    public func record(_ attempts: [(AttemptOutcome, ClaimedMessage)], disableAfter: Duration) async throws {
        guard !attempts.isEmpty else { return }
        let rows = try Self.json(
            attempts.enumerated().map { index, attempt in
                let (outcome, message) = attempt
                let retryAfter: Double? = if case .retry(let delay) = outcome.next { delay.seconds } else { nil }
                let status =
                    switch outcome.next {
                    case .delivered: "delivered"
                    case .retry: "pending"
                    case .exhausted, .disableEndpoint: "failed"
                    }
                return AttemptRow(
                    n: index,
                    messageID: message.id,
                    endpointID: message.endpointID,
                    durationMilliseconds: Int(outcome.duration.seconds * 1_000),
                    succeeded: outcome.next == .delivered,
                    gone: outcome.next == .disableEndpoint,
                    statusCode: outcome.statusCode,
                    responseBody: outcome.responseBody,
                    error: outcome.error,
                    status: status,
                    retryAfter: retryAfter
                )
            }
        )
        let endpointIDs = try Self.json(Set(attempts.map(\.1.endpointID)).sorted())
        let alerts = try await self.pool.withConnection { connection in
            // Two round trips: the writes and the endpoints' new health, then the alerts they call
            // for with COMMIT.
            let writes = Batch<Void>([
                Self.commitWithoutWaitingForDisk,
                // The endpoints' rows first, in id order, as deleting an endpoint takes its row
                // (then its messages'): taken after a message's, a delete meanwhile deadlocked
                // (found by make bench).
                Statement(
                    """
                    SELECT 1 FROM webhook_endpoints WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))
                    ORDER BY id FOR KEY SHARE
                    """,
                    [endpointIDs]
                ),
                Statement(
                    """
                    INSERT INTO webhook_attempts (message_id, endpoint_id, duration_ms, succeeded, status_code, response_body, error)
                    SELECT a.message_id, a.endpoint_id, a.duration_ms, a.succeeded, a.status_code, a.response_body, a.error
                    FROM jsonb_to_recordset($1::jsonb) AS a(message_id text, endpoint_id text,
                        duration_ms integer, succeeded boolean, status_code integer, response_body text, error text, n bigint)
                    -- A message whose endpoint was deleted meanwhile is gone: nothing to record.
                    JOIN webhook_messages AS m ON m.id = a.message_id
                    ORDER BY a.n
                    """,
                    [rows]
                ),
            ]).and(
                // The messages still there: one whose endpoint was deleted meanwhile raises no alert.
                Batch(
                    Statement(
                        """
                        UPDATE webhook_messages AS m SET status = a.status, attempts = m.attempts + 1, leased_until = NULL,
                            next_attempt_at = CASE WHEN a.retry_after IS NULL THEN m.next_attempt_at
                                                   ELSE now() + make_interval(secs => a.retry_after) END,
                            delivered_at = CASE WHEN a.status = 'delivered' THEN now() END
                        FROM jsonb_to_recordset($1::jsonb) AS a(message_id text, status text, retry_after float8)
                        WHERE m.id = a.message_id
                        RETURNING m.id
                        """,
                        [rows]
                    )
                ) { result in Set(try result.map { try $0.decode(String.self, at: 0) }) }
            ).map(\.1)
            // Failing for `disableAfter`, and at least 12 hours, counted from the first failure since
            // the last success (NULL until then).
            let health = Batch(
                Statement(
                    """
                    WITH a AS (
                        SELECT endpoint_id, bool_or(gone) AS gone, (array_agg(succeeded ORDER BY n DESC))[1] AS succeeded
                        FROM jsonb_to_recordset($1::jsonb) AS a(endpoint_id text, succeeded boolean, gone boolean, n bigint)
                        GROUP BY endpoint_id
                    ), h AS (
                        SELECT e.id, a.succeeded, a.gone, NOT a.succeeded AND coalesce(
                            e.failing_since <= now() - make_interval(secs => $2)
                            AND now() - e.failing_since >= interval '12 hours', false) AS too_long
                        FROM webhook_endpoints AS e JOIN a ON a.endpoint_id = e.id
                        -- A success while healthy only moves last_success_at: once a second is enough
                        -- for the health it feeds, and each update would hold the endpoint's row until
                        -- commit, one batch of outcomes after another.
                        -- (An endpoint that never succeeded has no last_success_at: its first is written.)
                        WHERE e.enabled AND NOT (a.succeeded AND NOT a.gone AND e.failing_since IS NULL
                                                 AND coalesce(e.last_success_at > now() - interval '1 second', false))
                    )
                    UPDATE webhook_endpoints AS e SET
                        last_success_at = CASE WHEN h.succeeded THEN now() ELSE e.last_success_at END,
                        last_failure_at = CASE WHEN h.succeeded THEN e.last_failure_at ELSE now() END,
                        failing_since = CASE WHEN h.succeeded THEN NULL ELSE coalesce(e.failing_since, now()) END,
                        enabled = NOT (h.gone OR h.too_long),
                        disabled_reason = CASE
                            WHEN h.gone THEN 'the endpoint answered 410 Gone'
                            WHEN h.too_long THEN 'every delivery failed since ' || e.failing_since::text
                            END
                    FROM h WHERE e.id = h.id
                    RETURNING e.id, e.disabled_reason
                    """,
                    [rows, disableAfter.seconds]
                )
            ) { result in
                try result.compactMap { row -> (id: String, reason: String)? in
                    guard let reason = try row.decode(String?.self, at: 1) else { return nil }
                    return (try row.decode(String.self, at: 0), reason)
                }
            }
            return try connection.transaction(isolation: .readCommitted, opening: writes.and(health)) { opened in
                let (recorded, disabledEndpoints) = opened
                let disabled = disabledEndpoints.map { endpoint in
                    OrderStore.alert(
                        kind: "webhook_endpoint_disabled",
                        provider: nil,
                        orderID: nil,
                        message: "endpoint \(endpoint.id) disabled: \(endpoint.reason)"
                    )
                }
                let exhausted = attempts.filter { $0.0.next == .exhausted && recorded.contains($0.1.id) }.map {
                    _,
                    message in
                    OrderStore.alert(
                        kind: "webhook_message_exhausted",
                        provider: nil,
                        orderID: nil,
                        message:
                            "message \(message.id) to endpoint \(message.endpointID) failed \(message.previousAttempts + 1) attempts"
                    )
                }
                return (disabled + exhausted).reduce(Batch<[Alert]>.constant([])) { all, next in
                    all.and(next).map { $0 + [$1] }
                }
            }
        }
        for alert in alerts { self.onAlert?(alert) }
    }

    /// One attempt as the statements of ``record(_:disableAfter:)`` read it (`jsonb_to_recordset`).
    private struct AttemptRow: Encodable {
        /// The order the attempts ended in.
        let n: Int
        let messageID: String
        let endpointID: String
        let durationMilliseconds: Int
        let succeeded: Bool
        let gone: Bool
        let statusCode: Int?
        let responseBody: String?
        let error: String?
        let status: String
        let retryAfter: Double?

        enum CodingKeys: String, CodingKey {
            case messageID = "message_id"
            case endpointID = "endpoint_id"
            case durationMilliseconds = "duration_ms"
            case n, succeeded, gone
            case statusCode = "status_code"
            case responseBody = "response_body"
            case error, status
            case retryAfter = "retry_after"
        }
    }

    /// Whether any endpoint takes deliveries: without one, the dispatcher need not look for messages.
    public func hasEnabledEndpoints() async throws -> Bool {
        try await self.pool.withConnection { connection in
            try connection.query("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled)").first!
                .decode(Bool.self, at: 0)
        }
    }

    /// When the next pending message of an enabled endpoint falls due, if any. Leased messages are
    /// left out: the instance that claimed one records it, and a dead instance's lease is found by
    /// the dispatcher's regular look.
    public func nextDue() async throws -> Date? {
        try await self.pool.withConnection { connection in
            try connection.query(
                """
                SELECT min(m.next_attempt_at) FROM webhook_messages AS m
                JOIN webhook_endpoints AS e ON e.id = m.endpoint_id AND e.enabled
                WHERE m.status = 'pending' AND \(Self.notLeased)
                """
            ).first?.decode(Date?.self, at: 0)
        }
    }

    /// Message `m` is free to claim: not leased, or its lease ran out (its instance died).
    private static let notLeased = "(m.leased_until IS NULL OR m.leased_until <= now())"

    /// The first statement of a claim's and an outcome's transaction: see the type's comment.
    private static var commitWithoutWaitingForDisk: Statement { Statement("SET LOCAL synchronous_commit = off") }

    // MARK: Rows

    static let endpointColumns = """
        id, url, to_jsonb(events)::text, description, enabled, disabled_reason, secret, previous_secret,
        previous_secret_expires_at, failing_since, last_success_at, last_failure_at, created_at, updated_at
        """

    static func endpoint(from row: Row) throws -> WebhookEndpoint {
        let events = try JSONDecoder().decode([String].self, from: Data(try row.decode(String.self, at: 2).utf8))
        return WebhookEndpoint(
            id: try row.decode(String.self, at: 0),
            url: try row.decode(String.self, at: 1),
            events: events,
            description: try row.decode(String?.self, at: 3),
            enabled: try row.decode(Bool.self, at: 4),
            disabledReason: try row.decode(String?.self, at: 5),
            secret: try row.decode(String.self, at: 6),
            previousSecret: try row.decode(String?.self, at: 7),
            previousSecretExpiresAt: try row.decode(Date?.self, at: 8),
            failingSince: try row.decode(Date?.self, at: 9),
            lastSuccessAt: try row.decode(Date?.self, at: 10),
            lastFailureAt: try row.decode(Date?.self, at: 11),
            createdAt: try row.decode(Date.self, at: 12),
            updatedAt: try row.decode(Date.self, at: 13)
        )
    }

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

extension Duration {
    /// The duration in seconds, as SQL's `make_interval(secs => …)` takes it.
    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
