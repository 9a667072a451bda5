import Foundation
import Postgres
import Storage
import TestSupport
import Testing

@Suite("Schema")
struct SchemaTests {
    /// The migrations built into the binary are the repository's `migrations/`, every file, byte
    /// for byte (a new file must be added to `Schema.builtIn` too).
    @Test func builtInMigrationsAreTheDirectory() throws {
        let builtIn = try Schema.migrations()
        let files = try Migration.load(from: TestEnvironment.migrationsDirectory)
        #expect(builtIn.map(\.version) == files.map(\.version))
        #expect(builtIn.map(\.name) == files.map(\.name))
        #expect(builtIn.map(\.checksum) == files.map(\.checksum))
        #expect(try Schema.migrations(directory: TestEnvironment.migrationsDirectory.path) == files)
    }

    /// A directory that cannot be read is named in a plain sentence, not a Foundation error dump.
    @Test func unreadableDirectoryIsNamedPlainly() {
        let error = #expect(throws: PostgresError.self) { try Schema.migrations(directory: "/no/such/migrations") }
        #expect(error?.message.contains("/no/such/migrations") == true)
        #expect(error?.message.contains("Domain") == false)
        #expect(error?.message.contains("Code=") == false)
    }
}
