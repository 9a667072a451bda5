import SSEGateway
import Testing

@Suite("ServerSentEventEncoder")
struct ServerSentEventEncoderTests {
    /// A full event encodes its fields in order and ends with a blank line.
    @Test func encodesAllFields() {
        let event = ServerSentEvent(
            id: "42",
            event: "status",
            data: #"{"status":"pending"}"#,
            retry: .milliseconds(2500)
        )
        #expect(
            ServerSentEventEncoder.encode(event)
                == "retry: 2500\nid: 42\nevent: status\ndata: {\"status\":\"pending\"}\n\n"
        )
    }

    /// Data is split on LF, CR and CRLF alike into several data lines; empty lines survive.
    @Test(arguments: [
        ("a\nb", ["a", "b"]), ("a\rb", ["a", "b"]), ("a\r\nb", ["a", "b"]), ("a\n\nb", ["a", "", "b"]),
        ("a\r\n\r\nb\n", ["a", "", "b", ""]), ("", [""]), ("\n", ["", ""]), ("one line", ["one line"]),
        ("a\r\r\nb", ["a", "", "b"]), ("é\r\n🙂\r", ["é", "🙂", ""]), ("a\n\u{301}b", ["a", "\u{301}b"]),
    ])
    func splitsDataOnEveryLineBreak(data: String, lines: [String]) {
        let encoded = ServerSentEventEncoder.encode(ServerSentEvent(data: data))
        #expect(encoded == lines.map { "data: \($0)\n" }.joined() + "\n")
        #expect(!encoded.dropLast(2).contains("\n\n") || lines.isEmpty)
    }

    /// CR, LF and NUL never reach the id or event lines, so no field can be injected through them.
    @Test(arguments: ["12\n\nevent: finish", "12\r\ndata: forged", "12\rretry: 1", "1\u{0}2"])
    func singleLineFieldsAreStripped(hostile: String) {
        let encoded = ServerSentEventEncoder.encode(ServerSentEvent(id: hostile, event: hostile, data: "x"))
        let lines = encoded.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)  // id, event, data, blank, and the empty piece after the last \n
        #expect(lines[0].hasPrefix("id: ") && lines[1].hasPrefix("event: ") && lines[2] == "data: x")
        #expect(!encoded.contains("\r") && !encoded.contains("\0"))
    }

    /// Non-ASCII text passes through as UTF-8, untouched.
    @Test func keepsUnicode() {
        let encoded = ServerSentEventEncoder.encode(ServerSentEvent(event: "支付", data: "成功 ✅ naïve 🙂"))
        #expect(encoded == "event: 支付\ndata: 成功 ✅ naïve 🙂\n\n")
        #expect(Array(encoded.utf8).count > encoded.count)
    }

    /// Comments and retry-only blocks have their own shapes.
    @Test func commentsAndRetry() {
        #expect(ServerSentEventEncoder.comment("keepalive") == ": keepalive\n\n")
        #expect(ServerSentEventEncoder.comment("a\nb") == ": a\n: b\n\n")
        #expect(ServerSentEventEncoder.retry(.seconds(1)) == "retry: 1000\n\n")
    }
}

@Suite("LastEventID")
struct LastEventIDTests {
    /// Digits parse; absent or empty means none.
    @Test func parsesIDs() throws {
        #expect(try LastEventID.parse(nil) == nil)
        #expect(try LastEventID.parse("") == nil)
        #expect(try LastEventID.parse("0") == 0)
        #expect(try LastEventID.parse("9223372036854775807") == Int64.max)
    }

    /// Anything else is refused, never read as zero (which would replay everything).
    @Test(arguments: [
        "-1", "1.5", " 1", "1 ", "abc", "0x10", "9223372036854775808", "99999999999999999999", "１２", "+1", "1e3",
    ])
    func refusesMalformedIDs(text: String) {
        #expect(throws: LastEventID.Malformed.self) { try LastEventID.parse(text) }
    }
}
