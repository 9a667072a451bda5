import Foundation
import Payments

/// Every trade, by provider and our order id (the provider's out_trade_no), and Stripe's by
/// PaymentIntent id too.
struct TradeBook: Sendable {
    struct Key: Hashable, Sendable {
        let provider: Provider
        let orderID: String
    }

    /// A repeated creation asked for another amount than the trade has.
    struct AmountConflict: Error {
        let existing: Trade
    }

    private var trades: [Key: Trade] = [:]
    private var keysByPaymentID: [String: Key] = [:]

    subscript(provider: Provider, orderID: String) -> Trade? { self.trades[Key(provider: provider, orderID: orderID)] }

    /// The trade whose provider id is `paymentID` (a PaymentIntent id, a trade_no), whether or not
    /// the provider shows it yet.
    func trade(paymentID: String) -> Trade? { self.keysByPaymentID[paymentID].flatMap { self.trades[$0] } }

    /// Opens a trade, or returns the one already open for the same order and price (`created`
    /// false): a repeat is harmless, as a provider's create is for the same out_trade_no.
    /// `paymentID` is used only for a new trade.
    mutating func open(
        provider: Provider,
        orderID: String,
        price: Money,
        now: Date,
        paymentID: String
    ) throws(AmountConflict) -> (trade: Trade, created: Bool) {
        let key = Key(provider: provider, orderID: orderID)
        if let existing = self.trades[key] {
            guard existing.price == price else { throw AmountConflict(existing: existing) }
            return (existing, false)
        }
        let trade = Trade(provider: provider, orderID: orderID, price: price, createdAt: now, paymentID: paymentID)
        self.trades[key] = trade
        self.keysByPaymentID[paymentID] = key
        return (trade, true)
    }

    /// Applies `change` to the trade, if there is one, and returns what it returned.
    mutating func update<Result, Failure: Error>(
        provider: Provider,
        orderID: String,
        _ change: (inout Trade) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        let key = Key(provider: provider, orderID: orderID)
        guard var trade = self.trades[key] else { return nil }
        let result = try change(&trade)
        self.trades[key] = trade
        return result
    }
}
