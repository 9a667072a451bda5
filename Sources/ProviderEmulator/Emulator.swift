import Foundation
import Logging
import PaymentProviders
import Payments
import Synchronization

/// What every route shares: the configuration, the injected clock, the state under its lock, the
/// simulator that signs callbacks as each provider would, and the sender that delivers them.
final class Emulator: Sendable {
    let configuration: EmulatedProviders.Configuration
    let now: @Sendable () -> Date
    let state = Mutex(EmulatorState())
    let simulator: DeliverySimulator
    let callbacks: CallbackSender
    let logger: Logger

    init(
        configuration: EmulatedProviders.Configuration,
        callbacks: CallbackSender,
        logger: Logger,
        now: @escaping @Sendable () -> Date
    ) {
        self.configuration = configuration
        self.callbacks = callbacks
        self.logger = logger
        self.now = now
        var credentials = DeliverySimulator.Credentials()
        credentials.stripeSecret = configuration.stripe.webhookSecret
        credentials.wechatPaySerial = configuration.wechatPay.platformSerial
        credentials.wechatPayPrivateKey = configuration.wechatPay.platformPrivateKey
        credentials.wechatPayAPIv3Key = configuration.wechatPay.apiV3Key
        credentials.wechatPayMerchantID = configuration.wechatPay.merchantID
        credentials.wechatPayAppID = configuration.wechatPay.appID
        credentials.alipayPrivateKey = configuration.alipay.alipayPrivateKey
        credentials.alipayAppID = configuration.alipay.appID
        self.simulator = DeliverySimulator(credentials: credentials)
    }

    /// The current time in Unix milliseconds.
    var nowMilliseconds: Int64 { Int64((self.now().timeIntervalSince1970 * 1000).rounded(.down)) }
}
