/// Reads `text/event-stream` bytes as the WHATWG HTML standard's EventSource does, one chunk at a
/// time: lines end at CRLF, LF or CR (also when a CRLF is split across chunks), a blank line
/// dispatches the event, `:` starts a comment, a leading BOM is skipped, and an unfinished event at
/// the end of the stream is discarded.
///
/// Unlike a browser it also reports comments and `retry:` values, so tests can see keepalives and
/// the reconnection delay the server asks for.
public struct EventStreamParser: Sendable {
    /// One dispatched event.
    public struct Event: Sendable, Hashable {
        /// The last event id seen on the stream so far (what a browser would send as `Last-Event-ID`).
        public var id: String?
        /// The event's type; `message` when it named none.
        public var name: String
        /// The data lines joined with `\n`.
        public var data: String

        public init(id: String?, name: String, data: String) {
            self.id = id
            self.name = name
            self.data = data
        }
    }

    public enum Item: Sendable, Hashable {
        case event(Event)
        /// A comment line's text, without the colon and one leading space.
        case comment(String)
        /// A valid `retry:` field, in milliseconds.
        case retry(Int)
    }

    private var line: [UInt8] = []
    private var lastWasCR = false
    private var atStreamStart = true
    private var lastEventID: String?
    private var eventName = ""
    private var data: [UInt8] = []
    private var hasData = false

    public init() {}

    /// Feeds the next chunk of the stream and returns what it completed.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Item] {
        var items: [Item] = []
        // Over contiguous bytes, line by line: called from another module, this function is not
        // specialised for the caller's type, and walking a `ByteBufferView` byte by byte through
        // the generic `Sequence` cost the load generator more than the server's write of the event.
        if bytes.withContiguousStorageIfAvailable({ self.feed($0, into: &items) }) == nil {
            Array(bytes).withUnsafeBufferPointer { self.feed($0, into: &items) }
        }
        return items
    }

    private mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, into items: inout [Item]) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            if bytes[start] == UInt8(ascii: "\n"), self.lastWasCR {
                // The LF of a CRLF: the line already ended at the CR.
                self.lastWasCR = false
                start += 1
                continue
            }
            guard let end = bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") })
            else {
                self.lastWasCR = false
                self.line.append(contentsOf: bytes[start...])
                return
            }
            self.line.append(contentsOf: bytes[start..<end])
            self.lastWasCR = bytes[end] == UInt8(ascii: "\r")
            self.endLine(into: &items)
            start = end + 1
        }
    }

    private mutating func endLine(into items: inout [Item]) {
        self.read(line: self.line[...], into: &items)
        // The slice is gone: the buffer is kept, not copied.
        self.line.removeAll(keepingCapacity: true)
    }

    private mutating func read(line: ArraySlice<UInt8>, into items: inout [Item]) {
        var line = line
        if self.atStreamStart {
            self.atStreamStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line = line.dropFirst(3) }  // a byte order mark
        }
        guard !line.isEmpty else { return self.dispatch(into: &items) }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        if colon == line.startIndex {
            items.append(.comment(Self.text(Self.dropOneSpace(line.dropFirst()))))
            return
        }
        let field = colon.map { line[..<$0] } ?? line
        let value = colon.map { Self.dropOneSpace(line[line.index(after: $0)...]) } ?? []
        // Compared as bytes: no string is made for a field's name.
        if field.elementsEqual("event".utf8) {
            self.eventName = Self.text(value)
        } else if field.elementsEqual("data".utf8) {
            if self.hasData { self.data.append(UInt8(ascii: "\n")) }
            self.data.append(contentsOf: value)
            self.hasData = true
        } else if field.elementsEqual("id".utf8) {
            if !value.contains(0) { self.lastEventID = Self.text(value) }
        } else if field.elementsEqual("retry".utf8) {
            if !value.isEmpty, value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let milliseconds = Int(Self.text(value))
            {
                items.append(.retry(milliseconds))
            }
        }
        // Unknown fields are ignored, as the standard says.
    }

    private mutating func dispatch(into items: inout [Item]) {
        defer {
            self.eventName = ""
            self.data.removeAll(keepingCapacity: true)
            self.hasData = false
        }
        guard self.hasData else { return }
        items.append(
            .event(
                Event(
                    id: self.lastEventID,
                    name: self.eventName.isEmpty ? "message" : self.eventName,
                    data: Self.text(self.data[...])
                )
            )
        )
    }

    private static func dropOneSpace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        bytes.first == UInt8(ascii: " ") ? bytes.dropFirst() : bytes
    }

    /// UTF-8 decoding with replacement characters for invalid bytes, as browsers decode the stream.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}
