import Foundation
import NIOHTTP1
import PaymentProviders
import ProviderAPIs
import Testing
import _CryptoExtras

@Suite struct WeChatPaySigningTests {
    static let order = TradeReference(orderID: "1217752501201407033233368018", paymentID: nil)

    /// A client on WeChat Pay's host with mchid 1230000109 and wechatpay-go's test key.
    static func client() throws -> WeChatPayClient {
        let key = try _RSA.Signing.PrivateKey(providerPEM: TestKeys.weChatPayGoPEM)
        let configuration = try WeChatPayClient.Configuration(
            baseURL: ProviderBaseURL(WeChatPayClient.Configuration.defaultBaseURL),
            merchantID: "1230000109",
            merchantSerial: "F5765756002FDD77",
            merchantPrivateKey: key,
            platformKeys: ["PUB_KEY_ID_0000": key.publicKey]
        )
        return WeChatPayClient(configuration: configuration, http: unusedHTTP)
    }

    /// wechatpay-go's own vector: its test key signs "source" to the published signature.
    @Test func officialSignerVector() throws {
        let key = try _RSA.Signing.PrivateKey(providerPEM: TestKeys.weChatPayGoPEM)
        #expect(
            try key.pkcs1SHA256Signature(for: Array("source".utf8))
                == "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
        )
    }

    /// The client's own query request, at the vector's timestamp and nonce, carries the derived vector's signature.
    @Test func queryRequestVector() throws {
        let request = try Self.client().queryRequest(
            Self.order,
            timestamp: 1_554_208_460,
            nonce: "593BEC0C930BF1AFEB40B4A08C8FB242"
        )
        #expect(request.method == .GET)
        #expect(
            request.url
                == "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109"
        )
        #expect(request.body.isEmpty)
        let authorization = try #require(
            request.headers.first(name: "Authorization").flatMap(WeChatPaySignature.Authorization.init(header:))
        )
        #expect(authorization.merchantID == "1230000109")
        #expect(authorization.serial == "F5765756002FDD77")
        #expect(authorization.timestamp == 1_554_208_460)
        #expect(authorization.nonce == "593BEC0C930BF1AFEB40B4A08C8FB242")
        #expect(
            authorization.signature
                == "Mi6/vU9oV2sHqOtO5LZDQBvzCU+Hti+oFJOfyB0oyR0kxDgmeHmTqczM3gzb5jNY/uFYvtMBOke1DxYDEK6rSE3l7Y0Xp3WrgX7gZgRTHJAz/qFRze1qVxK1kWx1wcXs9jqWHy3BApmDEFO+2oBGfde4qmTG9oAMYmJZ3QTWVjNOKTaJ3lH5HbAdX+gFAO1PIOUmL8HnMlLWVNyW7BJzFFYiBvJmsSp5lgdW0Jw76oMZ0LCiPqe5FlzovlZQXx4uup7PMpGcUVzFQ69APJeBVQqAMuQJDiCbl5/XCi3eteFKVj0ZpQrcpJa+kynM0Z8TE/CwPMVR0c5b2xN1s7ofUQ=="
        )
        #expect(request.headers.first(name: "Accept") == "application/json")
        #expect(request.headers.first(name: "User-Agent") == "PayNotify/1.0")
        #expect(request.headers.first(name: "Wechatpay-Serial") == "PUB_KEY_ID_0000")
        #expect(request.headers.first(name: "Content-Type") == nil)
    }

    /// The client's own close request, at the vector's timestamp and nonce, carries the derived vector's body and signature.
    @Test func closeRequestVector() throws {
        let request = try Self.client().closeRequest(
            Self.order,
            timestamp: 1_554_208_460,
            nonce: "593BEC0C930BF1AFEB40B4A08C8FB242"
        )
        #expect(request.method == .POST)
        #expect(
            request.url
                == "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/1217752501201407033233368018/close"
        )
        #expect(String(decoding: request.body, as: UTF8.self) == #"{"mchid":"1230000109"}"#)
        #expect(request.headers.first(name: "Content-Type") == "application/json")
        let authorization = try #require(
            request.headers.first(name: "Authorization").flatMap(WeChatPaySignature.Authorization.init(header:))
        )
        #expect(
            authorization.signature
                == "TDw7X/MqsuxmtJhtlwONcKW32JZ042//ykbSPYRWfQKZDDAaHJbUtX6M6ciZI7vbaL7fps6QzZuFUxtPiZbPyILInFxlgZDisI4hp85ObUnn9M7//eLuUdffR9eEXGw3imy0PYoCpT9qQicB3nyY8naLfrTrgOdpQ3pmlkbIup12ZaDUSyv6oFiVufp0HBWaGwFMBqedJ75gUDS82iDJFlsygnQqYg+836cnlKArTJl6LgKgmezv8Yq90IUMpy2sldo57vOyLPpRNet6JrBX2UoFCdZ3qzCDaWWIz99Oq1NGgIbfqTuiMVwJ0z1W3Dv4a6rad3eW5CKiS5qr7hQ1ww=="
        )
    }

    /// A nonce is 32 characters of [0-9A-Za-z], and two are not the same.
    @Test func nonces() {
        let nonce = WeChatPayClient.nonce()
        #expect(nonce.count == 32)
        #expect(
            nonce.unicodeScalars.allSatisfy {
                $0.properties.isASCIIHexDigit || ("g"..."z").contains($0) || ("G"..."Z").contains($0)
            }
        )
        #expect(nonce != WeChatPayClient.nonce())
    }

    /// The Authorization header reads back as written, with its items in any order.
    @Test func authorizationRoundTrip() throws {
        let written = WeChatPaySignature.Authorization(
            merchantID: "1900009191",
            nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
            timestamp: 1_554_208_460,
            serial: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
            signature:
                "uOVRnA4qG/MNnYzdQxJanN+zU+lTgIcnU9BxGw5dKjK+VdEUz2FeIoC+D5sB/LN+nGzX3hfZg6r5wT1pl2ZobmIc6p0ldN7J6yDgUzbX8Uk3sD4a4eZVPTBvqNDoUqcYMlZ9uuDdCvNv4TM3c1WzsXUrExwVkI1XO5jCNbgDJ25nkT/c1gIFvqoogl7MdSFGc4W4xZsqCItnqbypR3RuGIlR9h9vlRsy7zJR9PBI83X8alLDIfR1ukt1P7tMnmogZ0cuDY8cZsd8ZlCgLadmvej58SLsIkVxFJ8XmUgx9yoaa6VO5Y1/r3tNNWfTrkPu+E9oA=="
        )
        #expect(WeChatPaySignature.Authorization(header: written.header) == written)
        let shuffled =
            "\(WeChatPaySignature.scheme) signature=\"\(written.signature)\", serial_no=\"\(written.serial)\","
            + "timestamp=\"1554208460\",mchid=\"1900009191\",nonce_str=\"\(written.nonce)\""
        #expect(WeChatPaySignature.Authorization(header: shuffled) == written)
    }

    /// Headers with another scheme, a missing, repeated or unquoted item, or a timestamp that is not a number are refused.
    @Test(arguments: [
        #"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="s""#,
        #"WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",timestamp="1",serial_no="s",signature="x""#,
        #"WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="n",timestamp="1",serial_no="s",signature="x""#,
        #"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="soon",serial_no="s",signature="x""#,
        #"WECHATPAY2-SM2-WITH-SM3 mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x""#,
        #"mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x""#,
        #"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x",extra"#,
    ])
    func malformedAuthorizationRefused(_ header: String) {
        #expect(WeChatPaySignature.Authorization(header: header) == nil)
    }

    /// A signed answer `seconds` from `now`, with `signature` in place of the real one when given.
    static func response(at timestamp: Int64, signature: String? = nil, extraHeaders: [(String, String)] = [])
        -> ProviderResponse
    {
        let body = Array(#"{"trade_state":"NOTPAY"}"#.utf8)
        let message = WeChatPaySignature.responseMessage(timestamp: String(timestamp), nonce: "N0NCE", body: body)
        var headers = HTTPHeaders([
            ("Wechatpay-Timestamp", String(timestamp)), ("Wechatpay-Nonce", "N0NCE"),
            ("Wechatpay-Signature", signature ?? TestKeys.platform.sign(message)), ("Wechatpay-Serial", "S1"),
        ])
        headers.add(contentsOf: extraHeaders)
        return ProviderResponse(status: 200, headers: headers, body: body)
    }

    /// Whether `verifier` accepts `response` at 1 700 000 000 s.
    static func accepts(_ verifier: WeChatPayResponseVerifier, _ response: ProviderResponse) -> Bool {
        do {
            try verifier.verify(response, now: Date(timeIntervalSince1970: 1_700_000_000))
            return true
        } catch {
            return false
        }
    }

    /// A timestamp less than the tolerance from now verifies, either way; one at the tolerance or beyond does not.
    @Test func timestampWindow() {
        let verifier = WeChatPayResponseVerifier(
            platformKeys: ["S1": TestKeys.platform.publicKey],
            tolerance: .seconds(300)
        )
        for (offset, verifies) in [(0, true), (-299, true), (299, true), (-300, false), (300, false), (-86_400, false)]
        {
            let verified = Self.accepts(verifier, Self.response(at: 1_700_000_000 + Int64(offset)))
            #expect(verified == verifies, "offset \(offset)")
        }
    }

    /// WeChat Pay's probe signatures, repeated headers and another signature type never verify.
    @Test func probesAndAmbiguitiesRefused() {
        let verifier = WeChatPayResponseVerifier(
            platformKeys: ["S1": TestKeys.platform.publicKey],
            tolerance: .seconds(300)
        )
        #expect(Self.accepts(verifier, Self.response(at: 1_700_000_000)))
        let refused = [
            Self.response(at: 1_700_000_000, signature: "WECHATPAY/SIGNTEST/" + String(repeating: "A", count: 320)),
            Self.response(at: 1_700_000_000, extraHeaders: [("Wechatpay-Serial", "S1")]),
            Self.response(at: 1_700_000_000, extraHeaders: [("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3")]),
        ]
        for response in refused { #expect(!Self.accepts(verifier, response)) }
    }
}
