public import ServiceLifecycle

/// Runs `service` in a child task while `body` runs, then cancels it and waits for it to end.
public func withRunning<S: Service, T: Sendable>(
    _ service: S,
    _ body: @Sendable (S) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await service.run() }
        defer { group.cancelAll() }
        return try await body(service)
    }
}
