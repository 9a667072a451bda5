import Foundation
import HTTPTypes
import Hummingbird

/// The browser pages: the checkout demo (`/`, `/checkout/{id}`), the ops page (`/ops`) and their
/// scripts and style (`/assets/…`), plain files from the `Pages` resource folder, read once at start.
///
/// Served with a Content-Security-Policy that allows only this origin's own scripts and styles, so
/// nothing a webhook or a merchant put in an event can run as script on these pages.
struct PagesController {
    private let pages: [String: (contentType: String, body: ByteBuffer)]
    /// Where the pages' scripts may connect besides this origin: the demo's provider emulator.
    private let connectSources: String

    /// - Throws: when the resource folder is missing (a binary deployed without its
    ///   `paynotify_PayNotify.resources` folder beside it).
    /// - Parameter emulatorURL: the demo's provider emulator, which the checkout page calls to pay.
    init(emulatorURL: String? = nil) throws {
        self.connectSources = (["'self'"] + (emulatorURL.map { [$0] } ?? [])).joined(separator: " ")
        guard let folder = Bundle.module.url(forResource: "Pages", withExtension: nil) else {
            throw PagesMissing()
        }
        var pages: [String: (String, ByteBuffer)] = [:]
        for (name, type) in Self.files {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            pages[name] = (type, ByteBuffer(bytes: data))
        }
        self.pages = pages
    }

    private static let files = [
        "checkout.html": "text/html; charset=utf-8", "ops.html": "text/html; charset=utf-8",
        "checkout.js": "text/javascript; charset=utf-8", "ops.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
    ]

    struct PagesMissing: Error, CustomStringConvertible {
        var description: String {
            "the Pages resources are missing: deploy paynotify_PayNotify.resources beside the binary"
        }
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/") { _, _ in self.page("checkout.html") }
        router.get("/checkout/{id}") { _, _ in self.page("checkout.html") }
        router.get("/ops") { _, _ in self.page("ops.html") }
        router.get("/assets/{name}") { _, context in
            let name = try context.parameters.require("name")
            guard name.hasSuffix(".js") || name.hasSuffix(".css") else {
                throw APIError(.notFound, code: "not_found", message: "No such asset.")
            }
            return self.page(name)
        }
    }

    private func page(_ name: String) -> Response {
        guard let page = self.pages[name] else {
            return Response(status: .notFound)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: page.contentType,
                .cacheControl: "no-cache",
                .contentSecurityPolicy:
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src \(self.connectSources); frame-ancestors 'none'",
                .xContentTypeOptions: "nosniff",
                HTTPField.Name("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: page.body)
        )
    }
}
