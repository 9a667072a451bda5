import Foundation
import PayNotifyClient
import SSEGateway
import Testing

private func parse(_ chunks: [String]) -> [EventStreamParser.Item] {
    var parser = EventStreamParser()
    return chunks.flatMap { parser.feed(Array($0.utf8)) }
}

private func event(_ id: String?, _ name: String, _ data: String) -> EventStreamParser.Item {
    .event(.init(id: id, name: name, data: data))
}

@Suite("EventStreamParser")
struct EventStreamParserTests {
    /// Fields, comments and retry come out as a browser reads them; the id carries over to later events.
    @Test func readsFieldsCommentsAndRetry() {
        let items = parse(["retry: 3000\n\n: keepalive\n\nid: 7\nevent: status\ndata: {}\n\ndata: plain\n\n"])
        #expect(
            items == [.retry(3000), .comment("keepalive"), event("7", "status", "{}"), event("7", "message", "plain")]
        )
    }

    /// Every line ending works, also a CRLF split between two chunks (one line end, not two).
    @Test func lineEndingsAcrossChunks() {
        #expect(parse(["data: a\r", "\ndata: b\r\r"]) == [event(nil, "message", "a\nb")])
        #expect(parse(["data: a\rdata: b\n", "\n"]) == [event(nil, "message", "a\nb")])
        #expect(parse(["da", "ta:x", "\r\n\r", "\n"]) == [event(nil, "message", "x")])
    }

    /// A byte order mark at the start is skipped; an id holding NUL is ignored; an unfinished event is not dispatched.
    @Test func edgeCasesOfTheStandard() {
        #expect(parse(["\u{FEFF}data: x\n\n"]) == [event(nil, "message", "x")])
        #expect(
            parse(["id: 1\ndata: a\n\nid: 2\u{0}3\ndata: b\n\n"]) == [
                event("1", "message", "a"), event("1", "message", "b"),
            ]
        )
        #expect(parse(["data: never finished\n"]).isEmpty)
        #expect(parse(["retry: soon\n\n", "data\n\n"]) == [event(nil, "message", "")])
    }

    /// Whatever the encoder is given, the parser reads back the same data, and id and event
    /// cannot be forged through CR, LF or NUL.
    @Test(arguments: [
        "plain", "two\nlines", "cr\rlf\r\nmixed\n", "", "\n\n", "成功 ✅ naïve", "id: 99\nevent: finish",
    ])
    func roundTripsThroughTheEncoder(data: String) {
        let hostile = "12\r\nevent: finish\n\u{0}"
        let wire = ServerSentEventEncoder.encode(ServerSentEvent(id: hostile, event: "sta\ntus", data: data))
        let items = parse([wire])
        let expected = data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        #expect(items == [event("12event: finish", "status", expected)])
    }

    /// Random text (line breaks of every kind, NUL, colons, non-ASCII) through the encoder
    /// and the parser, fed in random chunk sizes, held contiguously or not: the data comes back with its line breaks as LF,
    /// and nothing in an id or event name can start a field of its own.
    @Test func randomRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        let pieces = [
            "a", "é", "支付", "🙂", ":", " ", "\r", "\n", "\r\n", "\u{0}", "data: x", "id: 9", "retry: 1", "\u{FEFF}",
        ]
        for _ in 0..<2000 {
            func text() -> String {
                (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                    .joined()
            }
            let (data, id, name) = (text(), text(), text())
            let wire = Array(
                ServerSentEventEncoder.encode(ServerSentEvent(id: id, event: name.isEmpty ? nil : name, data: data))
                    .utf8
            )
            var parser = EventStreamParser()
            var items: [EventStreamParser.Item] = []
            var offset = 0
            while offset < wire.count {
                let size = Int.random(in: 1...7, using: &generator)
                let chunk = wire[offset..<min(offset + size, wire.count)]
                // Bytes held contiguously, and bytes that are not.
                items += size.isMultiple(of: 2) ? parser.feed(chunk) : parser.feed(chunk.lazy.map { $0 })
                offset += size
            }
            let expectedData = data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(
                of: "\r",
                with: "\n"
            )
            let stripped = { (text: String) in
                String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\u{0}" })
            }
            let expectedName = stripped(name).isEmpty ? "message" : stripped(name)
            #expect(items == [.event(.init(id: stripped(id), name: expectedName, data: expectedData))], "\(wire)")
        }
    }
}
