public import Hummingbird
public import NIOCore

/// The request context of every route: Hummingbird's core context plus the connection, which the
/// stream routes need (the peer's address for the per-address limit, and a way to close the
/// connection of a stream the hub dropped while its handler was blocked in a write).
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    public var remoteAddress: SocketAddress? { self.channel.remoteAddress }
}
