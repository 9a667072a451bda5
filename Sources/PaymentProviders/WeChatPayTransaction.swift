package import Payments

/// A WeChat Pay v3 transaction: the decrypted resource of a `TRANSACTION.*` notification, and the
/// answer to a query by out_trade_no, in one shape.
package struct WeChatPayTransaction: Decodable, Sendable {
    package let outTradeNo: String?
    package let tradeState: String
    package let tradeStateDesc: String?
    package let amount: Amount?

    /// Amounts in fen. `total` is the order's amount; `payer_total` (after coupons) is not
    /// what the order must be compared with.
    package struct Amount: Decodable, Sendable {
        package let total: Int64?
        package let currency: String?
    }

    /// What the trade state means for the order; `nil` for a state not listed. `NOTPAY` is not
    /// final: the payer may still pay. `CLOSED` (closed by the merchant or timed out) and `REVOKED`
    /// are final and unpaid.
    package var event: PaymentEvent? {
        switch self.tradeState {
        case "NOTPAY": PaymentEvent(kind: .awaitingPayment)
        case "USERPAYING": PaymentEvent(kind: .processing)
        case "SUCCESS":
            PaymentEvent(
                kind: .succeeded,
                paid: self.amount.flatMap { amount in
                    amount.total.flatMap { total in amount.currency.map { Money(amount: total, currency: $0) } }
                }
            )
        case "PAYERROR": PaymentEvent(kind: .failed, message: self.tradeStateDesc)
        case "CLOSED", "REVOKED": PaymentEvent(kind: .canceled)
        case "REFUND": PaymentEvent(kind: .refunded)
        default: nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case amount
        case outTradeNo = "out_trade_no"
        case tradeState = "trade_state"
        case tradeStateDesc = "trade_state_desc"
    }
}
