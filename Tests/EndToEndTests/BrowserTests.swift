import Foundation
import PayNotifyClient
import ProviderEmulator
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

    /// The demo's "Pay, but lose the callback": Chromium creates an emulated WeChat Pay order, pays
    /// it at the provider emulator from the page (its callback dropped), and the page still
    /// finishes `succeeded`, because the service asked WeChat Pay. The screenshot is left in the
    /// test artifacts (`checkout-lost-callback.png`).
    @Test func theDemoShowsReconciliationFinishingThePage() async throws {
        let keys = EmulatedProviderKeys.shared
        let emulatorPort = try TestEnvironment.freePort()
        var settings = keys.serviceSettings(emulatorPort: emulatorPort)
        settings.merge([
            "PAYNOTIFY_DEMO": "true", "PAYNOTIFY_DEMO_EMULATOR_URL": "http://127.0.0.1:\(emulatorPort)",
            "PAYNOTIFY_RECONCILE_AFTER": "2s", "PAYNOTIFY_RECONCILE_EVERY": "1s",
        ]) { $1 }
        try await Deployment.run(settings: settings) { deployment in
            let emulator = keys.emulatorConfiguration(servicePort: deployment.nginxPort, port: emulatorPort)
            try await EmulatedProviders.serve(configuration: emulator) { _ in
                try await WebDriver.run(logDirectory: deployment.directory) { browser in
                    try await browser.navigate(to: "http://127.0.0.1:\(deployment.nginxPort)/")
                    try await Self.waitFor(
                        browser,
                        "the emulated order's button",
                        #"String(document.getElementById("create-emulated-order").hidden)"#,
                        "false"
                    )
                    _ = try await browser.execute(#"document.getElementById("create-emulated-order").click();"#)
                    try await Self.waitFor(
                        browser,
                        "the lost-callback button",
                        #"String(document.getElementById("lost-callback").hidden)"#,
                        "false"
                    )
                    try await Self.waitFor(
                        browser,
                        "the snapshot",
                        #"document.getElementById("status").textContent"#,
                        "pending"
                    )
                    _ = try await browser.execute(#"document.getElementById("pay-lose-callback").click();"#)
                    try await eventually(within: .seconds(30), "the page to finish by reconciliation") {
                        try await browser.execute("return document.body.dataset.finished;") as? String == "true"
                    }
                    #expect(
                        try await browser.execute(#"return document.getElementById("status").textContent;"#)
                            as? String == "succeeded"
                    )
                    let notice =
                        try await browser.execute(
                            #"return document.getElementById("lost-callback-notice").textContent;"#
                        )
                        as? String
                    #expect(notice?.contains("callback") == true, "\(notice ?? "no notice")")
                    try await Task.sleep(for: .milliseconds(600))  // the progress bar's transition to 100 %
                    let screenshot = try await browser.screenshot()
                    try screenshot.write(
                        to: try TestEnvironment.artifactsDirectory().appendingPathComponent(
                            "checkout-lost-callback.png"
                        )
                    )
                }
            }
        }
    }

    /// Ten order streams on one page, through nginx. Over HTTPS with HTTP/2 (its 443 listener, the
    /// test's self-signed certificate) they share one connection, and all ten receive their orders'
    /// events through `finish`. Over plain HTTP/1.1 the same page gets six, Chromium's connections
    /// per origin, and the seventh stalls: why the public side should speak HTTP/2.
    @Test func tenStreamsOnOnePageShareOneHTTP2Connection() async throws {
        try await Deployment.run { deployment in
            let client = deployment.viaNginx
            try await WebDriver.run(logDirectory: deployment.directory, acceptInsecureCertificates: true) { browser in
                let orders = try await Self.tenStreams(
                    browser,
                    client,
                    on: "https://127.0.0.1:\(deployment.nginxTLSPort)/healthz",
                    over: "h2"
                )
                try await eventually(within: .seconds(20), "ten streams open over HTTP/2") {
                    try await Self.streams(browser, finished: false) == 10
                }
                try await client.sandboxToEvery(orders, "succeeded")
                try await eventually(within: .seconds(20), "ten streams finished over HTTP/2") {
                    try await Self.streams(browser, finished: true) == 10
                }

                _ = try await Self.tenStreams(
                    browser,
                    client,
                    on: "http://127.0.0.1:\(deployment.nginxPort)/healthz",
                    over: "http/1.1"
                )
                try await eventually(within: .seconds(20), "six streams open over HTTP/1.1") {
                    try await Self.streams(browser, finished: false) == 6
                }
                try await Task.sleep(for: .seconds(3))
                #expect(try await Self.streams(browser, finished: false) == 6, "more than six HTTP/1.1 streams opened")
                #expect(try await browser.execute("return window.sources[6].readyState;") as? Int == 0)
            }
        }
    }

    /// Creates ten orders, loads `page`, checks it came over `expectedProtocol` (`h2`, `http/1.1`),
    /// and opens an EventSource per order in it; each counts its events, and closes at `finish`.
    private static func tenStreams(
        _ browser: WebDriver,
        _ client: LoopbackHTTPClient,
        on page: String,
        over expectedProtocol: String
    ) async throws -> [CreatedOrder] {
        var orders: [CreatedOrder] = []
        for _ in 0..<10 { orders.append(try await client.createOrder()) }
        try await browser.navigate(to: page)
        let used = try await browser.execute(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol;"
        )
        #expect(used as? String == expectedProtocol)
        let paths = String(decoding: try JSONEncoder().encode(orders.map(\.streamPath)), as: UTF8.self)
        _ = try await browser.execute(
            """
            window.streamStates = \(paths).map(() => ({ events: 0, finished: false }));
            window.sources = \(paths).map((path, index) => {
                const source = new EventSource(path);
                const seen = () => { window.streamStates[index].events += 1; };
                source.addEventListener("status", seen);
                source.addEventListener("progress", seen);
                source.addEventListener("finish", () => {
                    seen();
                    window.streamStates[index].finished = true;
                    source.close();
                });
                return source;
            });
            """
        )
        return orders
    }

    /// How many of the page's streams have received an event, or their `finish` when `finished`.
    private static func streams(_ browser: WebDriver, finished: Bool) async throws -> Int? {
        let condition = finished ? "state.finished" : "state.events > 0"
        return try await browser.execute("return window.streamStates.filter(state => \(condition)).length;") as? Int
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
