/// The LISTEN/NOTIFY channels the service uses; every instance listens on all of them.
enum NotificationChannel {
    /// An order's event log grew.
    static let orderEvents = "order_events"

    static let all = [orderEvents]
}
