import NIOCore
import Testing

@testable import LoadGenerator

/// What the decoder made of `answer` fed in pieces of `sizes` (cycled): the status, the body's
/// bytes as text, whether it ended, and the error if one was thrown.
private func decode(_ answer: String, sizes: [Int] = [Int.max]) -> (
    status: Int?, body: String, ended: Bool, error: StreamResponseDecoder.Malformed?
) {
    var decoder = StreamResponseDecoder()
    var (status, body, ended): (Int?, String, Bool) = (nil, "", false)
    var bytes = ByteBuffer(string: answer)
    var piece = 0
    do {
        while bytes.readableBytes > 0 {
            let chunk = bytes.readSlice(length: min(sizes[piece % sizes.count], bytes.readableBytes))!
            piece += 1
            try decoder.feed(chunk) { part in
                switch part {
                case .head(let code): status = code
                case .body(let buffer): body += String(buffer: buffer)
                case .end: ended = true
                }
            }
        }
    } catch {
        return (status, body, ended, error)
    }
    return (status, body, ended, nil)
}

private let streamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nX-Pad:  a b \r\n\r\n"

@Suite("Load generator: the stream answer's decoder")
struct StreamResponseDecoderTests {
    /// A chunked stream comes out whole however its bytes are split: one byte at a time, across
    /// the head's end, the size lines and the CRLFs; extensions and trailers are skipped.
    @Test func chunkedBodyInAnySplit() {
        let answer =
            streamHead + "b\r\nretry: 250\n\r\n18;ext=1\r\nevent: stats\ndata: {}\n\n\n\r\n0\r\nX-Trailer: t\r\n\r\n"
        for sizes in [[Int.max], [1], [2, 3], [7], [5, 1, 13], [88, 1, 1]] {
            let result = decode(answer, sizes: sizes)
            #expect(result.status == 200, "\(sizes)")
            #expect(result.body == "retry: 250\n" + "event: stats\ndata: {}\n\n\n", "\(sizes)")
            #expect(result.ended && result.error == nil, "\(sizes)")
        }
    }

    /// An answer with a length (a refusal's JSON) ends after its length; one with neither
    /// length nor chunks runs until the connection closes.
    @Test func lengthAndUntilClose() {
        let refusal = "HTTP/1.1 401 Unauthorized\r\ncontent-length: 9\r\n\r\n{\"e\": 1}\n"
        for sizes in [[Int.max], [1], [60]] {
            let result = decode(refusal, sizes: sizes)
            #expect(result.status == 401 && result.body == "{\"e\": 1}\n" && result.ended && result.error == nil)
        }
        let empty = decode("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        #expect(empty.status == 204 && empty.body.isEmpty && empty.ended)
        let open = decode("HTTP/1.0 200 OK\r\n\r\ndata: x\n\n", sizes: [3])
        #expect(open.status == 200 && open.body == "data: x\n\n" && !open.ended && open.error == nil)
    }

    /// What is not a stream's answer is refused with a reason, never read as data.
    @Test(arguments: [
        ("HTTP/2 200\r\n\r\n", "status line"),
        ("HTTP/1.1 abc OK\r\n\r\n", "status line"),
        ("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "colon"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "content length"),
        (streamHead + "zz\r\n", "hexadecimal"),
        (streamHead + "\r\n", "without digits"),
        (streamHead + "2\r\nabc\r\n", "longer than its size"),
        (streamHead + "1\r\na\rx", "CR without LF"),
        (streamHead + "0\r\n\r\nextra", "after the end"),
        ("HTTP/1.1 200 OK\r\n" + String(repeating: "X-Long: 1234567890\r\n", count: 1000), "16 KB"),
    ])
    func malformedAnswers(answer: String, reason: String) {
        let error = decode(answer, sizes: [4]).error
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }
}
