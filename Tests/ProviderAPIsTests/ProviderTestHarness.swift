import Foundation
import ProviderAPIs

/// Runs `body` with a client of the local test server, its transport retrying after 10 ms and
/// 20 ms so that the suite stays fast, and shuts both down after.
func withClient<Client: Sendable, Result>(
    _ makeClient: (String, ProviderHTTP) throws -> Client,
    answering handler: @escaping TestHTTPServer.Handler,
    _ body: (Client, TestHTTPServer) async throws -> Result
) async throws -> Result {
    try await TestHTTPServer.with(handler) { server in
        let http = ProviderHTTP(configuration: .init(retryDelays: [.milliseconds(10), .milliseconds(20)]))
        do {
            let result = try await body(try makeClient(server.baseURL, http), server)
            try await http.shutdown()
            return result
        } catch {
            try await http.shutdown()
            throw error
        }
    }
}

/// The error a call ended in, or nil when it returned.
func callError<T>(_ call: () async throws(ProviderCallError) -> T) async -> ProviderCallError? {
    do {
        _ = try await call()
        return nil
    } catch {
        return error
    }
}

extension ProviderCallError {
    var isUnverified: Bool {
        if case .unverified = self { return true }
        return false
    }

    var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }

    var rejectedCode: String? {
        if case .rejected(_, let code, _) = self { return code }
        return nil
    }
}

/// A close's outcome as text: `closed`, `notFound`, `refused CODE`, `rejected CODE`, or the error.
func closeOutcome(_ call: () async throws(ProviderCallError) -> CloseResult) async -> String {
    do {
        switch try await call() {
        case .closed: return "closed"
        case .notFound: return "notFound"
        case .refused(let code): return "refused \(code)"
        }
    } catch {
        return error.rejectedCode.map { "rejected \($0)" } ?? "\(error)"
    }
}

/// A transport for clients whose requests are built and never sent (vectors): it lives as long
/// as the process, so it needs no shutdown.
let unusedHTTP = ProviderHTTP()
