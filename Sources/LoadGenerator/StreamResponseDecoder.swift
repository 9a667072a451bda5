public import NIOCore

/// Reads the server's answer to a stream request, as bytes arrive: the status, then the body's
/// bytes (unframed from chunked encoding, or as they come), then its end. The load generator reads
/// thousands of streams on the same two cores as the server it measures, and NIO's HTTP decoder
/// (a `ByteToMessageHandler` around llhttp, and one more handler per read) was a quarter of its
/// CPU while 10,000 ops streams each read an event (BENCHMARKS.md, item 20); this reads only what a
/// stream's answer holds. Not a general HTTP client: no informational answers, no trailers kept.
public struct StreamResponseDecoder: Sendable {
    public enum Part: Equatable, Sendable {
        case head(status: Int)
        case body(ByteBuffer)
        /// The body ended (its last chunk, or its length, was read).
        case end
    }

    public struct Malformed: Error, Equatable, Sendable {
        public let reason: String
    }

    private enum State: Equatable {
        case head
        /// A chunk's size line: the size so far (`nil` before its first digit), and whether the
        /// extension (after `;`) began.
        case chunkSize(Int?, extensionStarted: Bool)
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        /// A trailer line after the last chunk; `empty` while it has no bytes but its CR.
        case trailer(empty: Bool)
        case length(remaining: Int)
        case untilClose
        case done
    }

    /// The longest head accepted.
    static let maximumHead = 16 * 1024

    private var state = State.head
    private var head: [UInt8] = []
    /// A CR was read that ends a line in the chunk framing.
    private var sawCR = false

    public init() {}

    /// Decodes what `buffer` holds (all of it), handing each part to `handle` in order.
    public mutating func feed(_ buffer: ByteBuffer, _ handle: (Part) -> Void) throws(Malformed) {
        var buffer = buffer
        while buffer.readableBytes > 0 {
            switch self.state {
            case .head:
                try self.readHead(&buffer, handle)
            case .chunkData(let remaining):
                let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                self.state =
                    remaining == slice.readableBytes
                    ? .chunkEnd : .chunkData(remaining: remaining - slice.readableBytes)
                handle(.body(slice))
            case .length(let remaining):
                let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                self.state =
                    remaining == slice.readableBytes ? .done : .length(remaining: remaining - slice.readableBytes)
                handle(.body(slice))
                if self.state == .done { handle(.end) }
            case .untilClose:
                handle(.body(buffer.readSlice(length: buffer.readableBytes)!))
            case .done:
                throw Malformed(reason: "bytes after the end of the answer")
            case .chunkSize, .chunkEnd, .trailer:
                try self.readFraming(buffer.readInteger(as: UInt8.self)!, handle)
            }
        }
    }

    /// One byte of the chunked framing around the data.
    private mutating func readFraming(_ byte: UInt8, _ handle: (Part) -> Void) throws(Malformed) {
        if self.sawCR {
            guard byte == UInt8(ascii: "\n") else { throw Malformed(reason: "CR without LF in the chunk framing") }
            self.sawCR = false
            switch self.state {
            case .chunkSize(let size?, _):
                self.state = size == 0 ? .trailer(empty: true) : .chunkData(remaining: size)
            case .chunkEnd:
                self.state = .chunkSize(nil, extensionStarted: false)
            case .trailer(let empty):
                if empty {
                    self.state = .done
                    handle(.end)
                } else {
                    self.state = .trailer(empty: true)
                }
            default:
                preconditionFailure("only the framing's states read bytes one by one")
            }
            return
        }
        if byte == UInt8(ascii: "\r") {
            if case .chunkSize(nil, _) = self.state { throw Malformed(reason: "a chunk size without digits") }
            self.sawCR = true
            return
        }
        switch self.state {
        case .chunkSize(let size, let extensionStarted):
            if extensionStarted { return }
            if byte == UInt8(ascii: ";"), size != nil {
                self.state = .chunkSize(size, extensionStarted: true)
                return
            }
            guard let digit = Self.hexValue(byte), (size ?? 0) <= (Int.max >> 4) else {
                throw Malformed(reason: "a chunk size that is not hexadecimal")
            }
            self.state = .chunkSize((size ?? 0) << 4 | digit, extensionStarted: false)
        case .chunkEnd:
            throw Malformed(reason: "a chunk longer than its size")
        case .trailer:
            self.state = .trailer(empty: false)
        default:
            preconditionFailure("only the framing's states read bytes one by one")
        }
    }

    private mutating func readHead(_ buffer: inout ByteBuffer, _ handle: (Part) -> Void) throws(Malformed) {
        let view = buffer.readableBytesView
        // The end of the head may straddle reads: look back over what is kept.
        let kept = self.head.count
        self.head.append(contentsOf: view)
        guard let end = Self.endOfHead(self.head, from: max(0, kept - 3)) else {
            guard self.head.count <= Self.maximumHead else { throw Malformed(reason: "a head longer than 16 KB") }
            buffer.moveReaderIndex(forwardBy: view.count)
            return
        }
        buffer.moveReaderIndex(forwardBy: end - kept)
        let lines = self.head[..<(end - 4)].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self) }
        self.head = []
        let statusLine = lines[0].split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]),
            (200...599).contains(status)
        else {
            throw Malformed(reason: "a status line that is not HTTP/1.x's: \(lines[0])")
        }
        var chunked = false
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw Malformed(reason: "a header without a colon") }
            let value = Self.trimmed(line[line.index(after: colon)...])
            switch line[..<colon].lowercased() {
            case "transfer-encoding": chunked = value.lowercased() == "chunked"
            case "content-length":
                guard let parsed = Int(value), parsed >= 0 else {
                    throw Malformed(reason: "a content length of \(value)")
                }
                length = parsed
            default: break
            }
        }
        handle(.head(status: status))
        if chunked {
            self.state = .chunkSize(nil, extensionStarted: false)
        } else if let length {
            self.state = length == 0 ? .done : .length(remaining: length)
            if length == 0 { handle(.end) }
        } else {
            self.state = .untilClose
        }
    }

    /// The index just past the head's CRLF CRLF, looking from `start`.
    private static func endOfHead(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 3 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 {
                return index + 4
            }
            index += 1
        }
        return nil
    }

    /// Without the spaces and tabs around it.
    private static func trimmed(_ text: Substring) -> Substring {
        let isSpace = { (character: Character) in character == " " || character == "\t" }
        let start = text.firstIndex(where: { !isSpace($0) }) ?? text.endIndex
        let end = text.lastIndex(where: { !isSpace($0) }).map(text.index(after:)) ?? start
        return text[start..<end]
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
