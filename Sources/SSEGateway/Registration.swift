/// What hands out registrations: ``StreamHub`` and ``OpsFeed``.
protocol RegistrationOwner: AnyObject, Sendable {
    /// The registration `id` was forgotten: free its place (ending its stream, if it is live).
    func forget(id: Int)
}

/// A stream's registration with a hub or feed, which holds no reference to it: when its last copy
/// goes (the response was never written, or whoever held it forgot it), its place is freed.
final class Registration<Owner: RegistrationOwner>: Sendable {
    let id: Int
    weak let owner: Owner?

    init(id: Int, owner: Owner) {
        self.id = id
        self.owner = owner
    }

    deinit { self.owner?.forget(id: self.id) }
}
