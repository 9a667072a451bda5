import Crypto
public import Foundation
import Signatures

/// One schema change: a file `NNNN_name.sql` whose number orders it and whose SHA-256 checksum
/// proves, once applied, that it has not been edited since.
public struct Migration: Sendable, Hashable {
    package let version: Int
    package let name: String
    let sql: String
    /// Hex SHA-256 of the file's bytes.
    package let checksum: String

    package init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = hexString(SHA256.hash(data: Array(sql.utf8)))
    }

    /// Reads every `NNNN_name.sql` file of a directory, in version order.
    ///
    /// - Throws: ``PostgresError/Kind/migration`` for an unreadable directory or file, and as
    ///   ``load(files:)`` does.
    public static func load(from directory: URL) throws(PostgresError) -> [Migration] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            throw PostgresError(
                kind: .migration,
                message: "cannot read the migrations directory \(directory.path): it does not exist or is not readable"
            )
        }
        var files: [(name: String, bytes: [UInt8])] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            let path = directory.appendingPathComponent(fileName).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PostgresError(kind: .migration, message: "cannot read migration file \(path)")
            }
            files.append((fileName, Array(data)))
        }
        return try Self.load(files: files)
    }

    /// The migrations of `NNNN_name.sql` files given by name and bytes (read from a directory, or
    /// built into the binary), in version order.
    ///
    /// - Throws: ``PostgresError/Kind/migration`` for a file whose name does not follow the
    ///   pattern, one that is not UTF-8, or two files with the same number.
    public static func load(files: [(name: String, bytes: [UInt8])]) throws(PostgresError) -> [Migration] {
        var migrations: [Migration] = []
        for file in files.sorted(by: { $0.name < $1.name }) {
            guard let (version, name) = Self.parse(fileName: file.name) else {
                throw PostgresError(
                    kind: .migration,
                    message: "migration file \(file.name) is not named NNNN_name.sql"
                )
            }
            guard let sql = String(validating: file.bytes, as: UTF8.self) else {
                throw PostgresError(kind: .migration, message: "migration file \(file.name) is not UTF-8")
            }
            if let twin = migrations.first(where: { $0.version == version }) {
                throw PostgresError(
                    kind: .migration,
                    message: "migrations \(twin.name) and \(name) share the number \(version)"
                )
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// `0001_initial.sql` → (1, "initial").
    private static func parse(fileName: String) -> (Int, String)? {
        let stem = fileName.dropLast(".sql".count)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard digits.count == 4, digits.allSatisfy(\.isASCII), let version = Int(digits), !name.isEmpty else {
            return nil
        }
        return (version, String(name))
    }
}
