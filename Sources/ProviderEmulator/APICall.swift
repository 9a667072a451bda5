import Hummingbird
import Logging
import Payments
import ServiceLifecycle
import Synchronization

/// How an API answer is to be signed, as the planned fault says.
enum ResponseSigning: Sendable, Hashable {
    case valid
    /// Well formed, but over other bytes: it must not verify.
    case wrong
    /// No signature at all.
    case none
}

/// One provider API call, as the call log names it.
struct APICall: Sendable {
    let provider: Provider
    let operation: String
    let orderID: String?
}

extension Emulator {
    /// The path every provider API call takes: the next planned fault for the provider is used up;
    /// a `500` or `429` fault answers at once (`faultAnswer`, in the provider's error shape)
    /// without performing the call; otherwise `answer` performs it and signs as told, and a
    /// `timeout` then holds the answer for the configured hang. The call is logged with the status
    /// sent, at the time it arrived.
    func perform(
        _ call: APICall,
        faultAnswer: (Fault, _ retryAfterSeconds: Int) -> Response,
        answer: (ResponseSigning) async -> Response
    ) async -> Response {
        let arrived = self.nowMilliseconds
        let planned = self.state.withLock { $0.faults.next(for: call.provider) }
        let response: Response
        switch planned?.fault {
        case nil: response = await answer(.valid)
        case let fault? where fault == .serverError || fault == .rateLimit:
            response = faultAnswer(fault, planned?.retryAfterSeconds ?? 0)
        case .timeout:
            response = await answer(.valid)
            // Ends early only when the emulator shuts down.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.configuration.hang) }
        case .badSignature: response = await answer(.wrong)
        case .unsigned: response = await answer(.none)
        case .serverError, .rateLimit: preconditionFailure("answered above")
        }
        if let planned {
            self.logger.info(
                "fault",
                metadata: ["provider": "\(call.provider.rawValue)", "fault": "\(planned.fault.rawValue)"]
            )
        }
        let record = CallLog.Call(
            provider: call.provider,
            operation: call.operation,
            orderID: call.orderID,
            atMilliseconds: arrived,
            status: Int(response.status.code)
        )
        self.state.withLock { $0.calls.record(record) }
        return response
    }
}
