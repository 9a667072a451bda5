public import Foundation

/// A directory of its own under the system's temporary directory, removed with everything in it
/// when the last reference goes.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        self.path = FileManager.default.temporaryDirectory.appendingPathComponent("paynotify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: false)
    }

    /// Writes `contents` to the file `name` in it; returns the file's path.
    public func write(_ name: String, contents: String) throws -> String {
        let file = self.path + "/" + name
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}
