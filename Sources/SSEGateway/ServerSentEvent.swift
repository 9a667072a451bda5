import EventLog

/// One Server-Sent Event, as the WHATWG HTML standard's `text/event-stream` defines it.
public struct ServerSentEvent: Sendable, Hashable {
    /// The event's id: what the browser sends back as `Last-Event-ID` when it reconnects.
    public var id: String?
    /// The event's type (`status`, `progress`, `finish`…); `nil` is the default `message`.
    public var event: String?
    /// The payload; line breaks in it become several `data:` lines, which the client joins with `\n`.
    public var data: String
    /// Tells the client how long to wait before reconnecting.
    public var retry: Duration?

    public init(id: String? = nil, event: String? = nil, data: String, retry: Duration? = nil) {
        self.id = id
        self.event = event
        self.data = data
        self.retry = retry
    }
}

/// The wire format, in one place. Pure: a value in, UTF-8 text out.
///
/// - `data` is split on CRLF, CR and LF, each piece on its own `data:` line, so a payload can never
///   end the event early or smuggle in a field of its own.
/// - `id` and `event` are single-line fields: CR, LF and NUL are stripped from them (a browser drops
///   an id holding NUL, and a line break would start a new field). Our ids are numbers and our event
///   names are validated, so stripping is a last line of defence, never a normal path.
package enum ServerSentEventEncoder {
    package static func encode(_ event: ServerSentEvent) -> String {
        var text = ""
        if let retry = event.retry { text += Self.retryField(retry) }
        if let id = event.id { text += "id: \(Self.singleLine(id))\n" }
        if let name = event.event { text += "event: \(Self.singleLine(name))\n" }
        for line in Self.lines(event.data) { text += "data: \(line)\n" }
        return text + "\n"
    }

    /// A comment line, ignored by clients: what keeps an idle stream alive through proxies.
    package static func comment(_ text: String) -> String {
        Self.lines(text).map { ": \($0)\n" }.joined() + "\n"
    }

    /// Only a `retry:` field: how long the client waits before reconnecting.
    package static func retry(_ delay: Duration) -> String {
        Self.retryField(delay) + "\n"
    }

    private static func retryField(_ delay: Duration) -> String {
        let milliseconds = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        return "retry: \(max(0, milliseconds))\n"
    }

    /// The lines of `text`, split on CRLF, CR and LF alike. Scanned as UTF-8 bytes (CR and LF never
    /// occur inside a multi-byte character, and always end a grapheme): walking `Character`s was
    /// most of a stream open's encoding (BENCHMARKS.md, item 13).
    static func lines(_ text: String) -> [Substring] {
        let utf8 = text.utf8
        var lines: [Substring] = []
        var start = utf8.startIndex
        var index = utf8.startIndex
        while index < utf8.endIndex {
            let byte = utf8[index]
            guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else {
                index = utf8.index(after: index)
                continue
            }
            lines.append(text[start..<index])
            index = utf8.index(after: index)
            if byte == UInt8(ascii: "\r"), index < utf8.endIndex, utf8[index] == UInt8(ascii: "\n") {
                index = utf8.index(after: index)
            }
            start = index
        }
        lines.append(text[start...])
        return lines
    }

    private static func singleLine(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" })
    }
}

/// The `Last-Event-ID` a client resumes from: an event-log id, a non-negative integer.
public enum LastEventID {
    /// The id, `nil` for an absent or empty header (start from the snapshot).
    ///
    /// - Throws: ``Malformed`` for anything but 1–19 ASCII digits that fit an `Int64`: a malformed
    ///   id is a client error to report, never a reason to crash or to replay everything.
    public static func parse(_ text: String?) throws(Malformed) -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        guard text.utf8.count <= 19, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int64(text)
        else { throw Malformed(text: String(text.prefix(40))) }
        return value
    }

    public struct Malformed: Error, Sendable, Hashable {
        /// The start of what was sent, for the error message.
        public let text: String
    }
}

extension ServerSentEventEncoder {
    /// An order's event as its streams send it: `id:` is the log's id, `event:` its name.
    static func encode(_ event: OrderEvent) -> String {
        Self.encode(ServerSentEvent(id: String(event.id), event: event.name, data: event.data))
    }

    static func encode(_ events: some Sequence<OrderEvent>) -> String {
        events.map { Self.encode($0) }.joined()
    }
}
