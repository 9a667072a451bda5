import Crypto
public import Foundation

/// One schema change: a file `NNNN_name.sql` whose number orders it and whose SHA-256 checksum
/// proves, once applied, that it has not been edited since.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String
    /// Hex SHA-256 of the file's bytes.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Array(sql.utf8)).map { byteHex($0) }.joined()
    }

    /// Reads every `NNNN_name.sql` file of a directory, in version order.
    ///
    /// - Throws: ``PostgresError/Kind/migration`` for an unreadable directory, a `.sql` file whose
    ///   name does not follow the pattern, or two files with the same number.
    public static func load(from directory: URL) throws(PostgresError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw PostgresError(
                kind: .migration,
                message: "cannot read migrations directory \(directory.path): \(error)"
            )
        }
        var migrations: [Migration] = []
        for fileName in names.sorted() where fileName.hasSuffix(".sql") {
            guard let (version, name) = Self.parse(fileName: fileName) else {
                throw PostgresError(
                    kind: .migration,
                    message: "migration file \(fileName) is not named NNNN_name.sql"
                )
            }
            let url = directory.appendingPathComponent(fileName)
            guard let data = FileManager.default.contents(atPath: url.path),
                let sql = String(data: data, encoding: .utf8)
            else {
                throw PostgresError(kind: .migration, message: "cannot read migration file \(url.path) as UTF-8")
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

private func byteHex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
}
