import HTTPTypes
import Hummingbird
import Postgres

/// `GET /healthz`: the process is up. `GET /readyz`: it can do its job, which needs the database
/// to answer and the listener to be listening; otherwise `503`, so a load balancer stops sending
/// traffic until both recover.
struct HealthController {
    let pool: ConnectionPool
    let listener: NotificationListener

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/healthz") { _, _ in
            Self.json(.ok, HealthBody(status: "ok", checks: nil))
        }
        router.get("/readyz") { _, _ in
            try await self.readiness()
        }
    }

    struct HealthBody: Encodable {
        let status: String
        let checks: Checks?
    }

    struct Checks: Encodable {
        let database: String
        let listener: String
    }

    private func readiness() async throws -> Response {
        let database: String
        do {
            try await self.pool.withConnection { connection in _ = try connection.query("SELECT 1") }
            database = "ok"
        } catch let error as PostgresError {
            database = "unavailable: \(error.kind)"
        }
        let listener = self.listener.isListening ? "ok" : "reconnecting"
        let ready = database == "ok" && listener == "ok"
        return Self.json(
            ready ? .ok : .serviceUnavailable,
            HealthBody(status: ready ? "ready" : "unavailable", checks: Checks(database: database, listener: listener))
        )
    }

    private static func json(_ status: HTTPResponse.Status, _ body: HealthBody) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: JSONBody.encode(body))
        )
    }
}
