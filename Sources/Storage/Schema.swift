import Foundation
public import Postgres

/// The service's schema: its migrations, built into the binary (`Package.swift` embeds the
/// repository's `migrations/`), so that `paynotify migrate` and `paynotify serve` work from any
/// directory.
public enum Schema {
    /// The migrations built into the binary, or, given a directory, its `NNNN_name.sql` files
    /// instead (`PAYNOTIFY_MIGRATIONS_DIR`).
    public static func migrations(directory: String? = nil) throws(PostgresError) -> [Migration] {
        if let directory { return try Migration.load(from: URL(fileURLWithPath: directory)) }
        return try Migration.load(files: Self.builtIn)
    }

    /// Each file of `migrations/`, by its name (SwiftPM's generated names mangle the leading
    /// digits). A new migration is added here too; `StorageTests` checks this list against the
    /// directory, so none is left out.
    static let builtIn: [(name: String, bytes: [UInt8])] = [
        ("0001_initial.sql", PackageResources._001_initial_sql),
        ("0002_alerts_and_idempotency.sql", PackageResources._002_alerts_and_idempotency_sql),
        ("0003_event_idempotency_keys.sql", PackageResources._003_event_idempotency_keys_sql),
        ("0004_merchant_webhooks.sql", PackageResources._004_merchant_webhooks_sql),
        ("0005_event_feed.sql", PackageResources._005_event_feed_sql),
        ("0006_webhook_message_leases.sql", PackageResources._006_webhook_message_leases_sql),
        ("0007_reconciliation.sql", PackageResources._007_reconciliation_sql),
    ]
}
