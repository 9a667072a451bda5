import Payments

extension Trade {
    /// WeChat Pay's `trade_state` and `trade_state_desc` (provider-apis.md §1a).
    var wechatPayState: (state: String, description: String) {
        switch self.state {
        case .created: ("NOTPAY", "订单未支付")
        case .paying: ("USERPAYING", "用户支付中")
        case .paid: ("SUCCESS", "支付成功")
        case .refunded: ("REFUND", "转入退款")
        case .closed: ("CLOSED", "订单已关闭")
        }
    }

    /// Alipay's `trade_status` (§2c), or nil while nobody scanned and Alipay knows no trade. A full
    /// refund closes the trade: "未付款交易超时关闭，或支付完成后全额退款".
    var alipayStatus: String? {
        switch self.state {
        case .created: nil
        case .paying: "WAIT_BUYER_PAY"
        case .paid: "TRADE_SUCCESS"
        case .refunded, .closed: "TRADE_CLOSED"
        }
    }

    /// The PaymentIntent's `status` (§3). A refund leaves it `succeeded`: refunds are the charge's.
    var stripeStatus: String {
        switch self.state {
        case .created: "requires_payment_method"
        case .paying: "processing"
        case .paid, .refunded: "succeeded"
        case .closed: "canceled"
        }
    }

    /// What this trade's provider would answer a query with, in its own words.
    var providerState: String {
        switch self.provider {
        case .wechatpay: self.wechatPayState.state
        case .alipay: self.alipayStatus ?? "ACQ.TRADE_NOT_EXIST"
        case .stripe, .sandbox: self.stripeStatus
        }
    }
}
