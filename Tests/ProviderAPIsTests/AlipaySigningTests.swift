import Foundation
import NIOHTTP1
import PaymentProviders
import ProviderAPIs
import Testing
import _CryptoExtras

@Suite struct AlipaySigningTests {
    /// A client for app 2021000122671080 with alipay-sdk-nodejs-all's fixture keys.
    static func client() throws -> AlipayClient {
        let configuration = try AlipayClient.Configuration(
            appID: "2021000122671080",
            appPrivateKeyText: TestKeys.alipayAppPEM,
            alipayPublicKeyTexts: [TestKeys.alipayPublicPEM]
        )
        return AlipayClient(configuration: configuration, http: unusedHTTP)
    }

    /// 2014-07-24 03:07:50 in Beijing.
    static let vectorTime = Date(timeIntervalSince1970: 1_406_142_470)

    /// The client's own parameters for a query, at the vector's time, sign to the derived vector of §2a.
    @Test func requestSignatureVector() throws {
        let client = try Self.client()
        let parameters = client.parameters(
            method: "alipay.trade.query",
            orderID: "20150320010101001",
            timestamp: AlipaySignature.beijingTimestamp(Self.vectorTime)
        )
        #expect(
            String(decoding: AlipaySignature.content(parameters), as: UTF8.self)
                == #"app_id=2021000122671080&biz_content={"out_trade_no":"20150320010101001"}&charset=utf-8&method=alipay.trade.query&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"#
        )
        let expected =
            "dJwMmCLgvFVT2tl/wjpJ/gHbRKKW7YhFoaatNi9t/rYSNKCi6W4hqN9Z4Z1nKc3m/izaF3grYGBydU4ZvEI32ZciI8RaXZGxmVHrJs99GNolDI1VFinZi7cvs7Xp6LqX2sNrH49mnuty/a1Gy5pqheilFLs0ATkQ17PeOliPVJafP36KQY0/Twiayw7G/X84wm5OI6MO3Pm0oLcvWs8a+lqxw18FfUhrKXGG/3uAJQrg4lX2ulryzuz7BtGkRIf4cutIr9d+fUKpwdP+0Dm6tUop8rGJDcT13zt06hkjRqOUDnNHIB9DURvUhsHk9uRrL/8QYQWJZn2koJByXt63cg=="
        #expect(try client.sign(parameters) == expected)

        // The request sends that signature in the query string and biz_content as the form body.
        let request = try client.request(
            method: "alipay.trade.query",
            orderID: "20150320010101001",
            now: Self.vectorTime
        )
        #expect(request.method == .POST)
        #expect(request.url.hasPrefix("https://openapi.alipay.com/gateway.do?app_id=2021000122671080&charset=utf-8&"))
        #expect(request.url.contains("&sign=\(PercentEncoding.encode(expected))&"))
        #expect(request.url.contains("&timestamp=2014-07-24%2003%3A07%3A50&"))
        #expect(!request.url.contains("biz_content"))
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == "biz_content=%7B%22out_trade_no%22%3A%2220150320010101001%22%7D"
        )
        #expect(request.headers.first(name: "Content-Type") == "application/x-www-form-urlencoded;charset=utf-8")
    }

    /// alipay-sdk-nodejs-all's "should work" answer verifies over the raw text of its response object.
    @Test func responseVerificationVector() throws {
        let body = Array(
            #"{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw=="}"#
                .utf8
        )
        let key = try _RSA.Signing.PublicKey(providerText: TestKeys.alipayPublicPEM)
        let verifier = AlipayResponseVerifier(publicKeys: [key])
        let envelope = try #require(AlipayResponseVerifier.envelope(body, method: "alipay.open.file.upload"))
        #expect(
            String(decoding: envelope.content, as: UTF8.self)
                == #"{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}"#
        )
        let sign = try #require(envelope.sign)
        #expect(verifier.isValid(envelope.content, sign: sign))
        // One byte changed, or another key: no longer.
        var tampered = Array(envelope.content)
        tampered[10] = UInt8(ascii: "2")
        #expect(!verifier.isValid(tampered[...], sign: sign))
        let other = AlipayResponseVerifier(publicKeys: [TestKeys.alipay.publicKey])
        #expect(!other.isValid(envelope.content, sign: sign))
    }

    /// A text signed with plain slashes verifies when sent with `\/`, and a text signed as sent still does.
    @Test func escapedSlashFallback() throws {
        let verifier = AlipayResponseVerifier(publicKeys: [TestKeys.alipay.publicKey])
        let sent = Array(#"{"code":"10000","url":"https:\/\/example.com\/a"}"#.utf8)
        let unescaped = Array(#"{"code":"10000","url":"https://example.com/a"}"#.utf8)
        #expect(verifier.isValid(sent[...], sign: TestKeys.alipay.sign(unescaped)))
        #expect(verifier.isValid(sent[...], sign: TestKeys.alipay.sign(sent)))
        // Without `\/` in the text there is nothing to fall back to.
        #expect(!verifier.isValid(unescaped[...], sign: TestKeys.alipay.sign(sent)))
        #expect(!verifier.isValid(sent[...], sign: "not base64!"))
    }

    /// An answer object is found under the method's key, else under error_response; without either there is none.
    @Test func envelopes() throws {
        let error = Array(#"{"error_response":{"code":"40002","msg":"Invalid Arguments"},"sign":"abc"}"#.utf8)
        let envelope = try #require(AlipayResponseVerifier.envelope(error, method: "alipay.trade.query"))
        #expect(String(decoding: envelope.content, as: UTF8.self) == #"{"code":"40002","msg":"Invalid Arguments"}"#)
        #expect(envelope.sign == "abc")
        let unsigned = Array(#"{"alipay_trade_query_response":{"code":"10000"},"sign":""}"#.utf8)
        #expect(try #require(AlipayResponseVerifier.envelope(unsigned, method: "alipay.trade.query")).sign == nil)
        #expect(AlipayResponseVerifier.envelope(Array(#"{"other":{}}"#.utf8), method: "alipay.trade.query") == nil)
    }
}
