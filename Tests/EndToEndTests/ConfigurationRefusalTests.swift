import Foundation
import TestSupport
import Testing

@Suite("The binary refuses bad configuration")
struct ConfigurationRefusalTests {
    /// A missing secret, an unreadable key file, a bad URL or a bad number: `paynotify serve`
    /// exits with status 78 and a message naming the setting, before touching anything.
    @Test(arguments: [
        ("PAYNOTIFY_STREAM_SECRET", ""),
        ("PAYNOTIFY_STREAM_SECRET", "short"),
        ("PAYNOTIFY_API_KEYS", ""),
        ("DATABASE_URL", "postgres://[::1"),
        ("PAYNOTIFY_ALIPAY_PUBLIC_KEY", "/nonexistent/alipay.pem"),
        ("PAYNOTIFY_WECHATPAY_PLATFORM_KEYS", "SERIAL=/nonexistent/key.pem"),
        ("PAYNOTIFY_PORT", "70000"),
        ("PAYNOTIFY_TRUSTED_PROXIES", "10.0.0.0/99"),
    ])
    func refusesToStart(setting: String, value: String) async throws {
        var environment = TestSecrets.environment
        environment["PATH"] = "/usr/bin:/bin"
        environment["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/none"
        environment["PAYNOTIFY_ALIPAY_APP_ID"] = "2021000000000000"
        environment["PAYNOTIFY_WECHATPAY_APIV3_KEY"] = "0123456789abcdef0123456789abcdef"
        environment[setting] = value
        if setting != "PAYNOTIFY_ALIPAY_PUBLIC_KEY" { environment["PAYNOTIFY_ALIPAY_APP_ID"] = nil }
        if setting != "PAYNOTIFY_WECHATPAY_PLATFORM_KEYS" { environment["PAYNOTIFY_WECHATPAY_APIV3_KEY"] = nil }
        let output = try TestEnvironment.workDirectory().appendingPathComponent("config-\(UUID().uuidString).log").path
        let process = try ChildProcess.start(
            try TestEnvironment.binary(),
            ["serve"],
            environment: environment,
            outputPath: output,
            errorPath: output
        )
        let status = try await process.wait()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect((status >> 8) & 0xff == 78, "exit status \(status): \(text)")
        #expect(text.contains("configuration error: \(setting)"), "\(text)")
    }
}
