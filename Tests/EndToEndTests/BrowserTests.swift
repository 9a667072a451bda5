import Foundation
import PayNotifyClient
import TestSupport
import Testing

@Suite("In a real browser")
struct BrowserTests {
    /// Headless Chromium opens the checkout page through nginx; sandbox webhooks pay the order; the
    /// page shows each step as it arrives, ends at succeeded and closes its EventSource. The
    /// screenshot is left in the test artifacts (`.build/test-artifacts/checkout-succeeded.png`).
    @Test func checkoutPageFollowsThePayment() async throws {
        try await Deployment.run { deployment in
            let client = deployment.viaNginx
            let order = try await client.createOrder()
            let page = "http://127.0.0.1:\(deployment.nginxPort)/checkout/\(order.id)#token=\(order.token)"
            try await WebDriver.run(logDirectory: deployment.directory) { browser in
                try await browser.navigate(to: page)
                try await Self.waitFor(
                    browser,
                    "the snapshot",
                    #"document.getElementById("status").textContent"#,
                    "pending"
                )
                try await client.sandbox("processing", order: order.id)
                try await Self.waitFor(
                    browser,
                    "processing",
                    #"document.getElementById("status").textContent"#,
                    "processing"
                )
                try await client.sandbox("progress", order: order.id, progress: 60)
                try await Self.waitFor(
                    browser,
                    "the progress bar",
                    #"String(document.getElementById("progress").value)"#,
                    "60"
                )
                try await client.sandbox("succeeded", order: order.id)
                try await Self.waitFor(browser, "the finish", "document.body.dataset.finished", "true")
                #expect(
                    try await browser.execute(#"return document.getElementById("status").textContent;"#) as? String
                        == "succeeded"
                )
                #expect(try await browser.execute("return window.paynotifySource.readyState;") as? Int == 2)
                let result =
                    try await browser.execute(#"return document.getElementById("result").textContent;"#) as? String
                #expect(result?.contains("succeeded") == true)
                try await Task.sleep(for: .milliseconds(600))  // the progress bar's transition to 100 %
                let screenshot = try await browser.screenshot()
                #expect(screenshot.starts(with: [0x89, 0x50, 0x4E, 0x47]))  // PNG
                try screenshot.write(
                    to: try TestEnvironment.artifactsDirectory().appendingPathComponent("checkout-succeeded.png")
                )
            }
        }
    }

    /// Polls `expression` in the page until it equals `expected` (10 s at most).
    private static func waitFor(_ browser: WebDriver, _ what: String, _ expression: String, _ expected: String)
        async throws
    {
        try await eventually(within: .seconds(10), "the page to show \(what)") {
            try await browser.execute("return \(expression);") as? String == expected
        }
    }
}
