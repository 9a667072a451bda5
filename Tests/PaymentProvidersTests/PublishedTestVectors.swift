// Published test vectors, copied as data from the providers' own SDK test suites. Each was also
// re-checked independently (Python `cryptography`) before it was put here.

/// wechatpay-apiv3/wechatpay-go `core/notify/notify_test.go` (`TestHandler_ParseNotifyRequest`): a
/// complete signed and encrypted notification, verified there with the clock frozen at its timestamp.
enum WeChatPayNotifyVector {
    /// The self-signed test platform certificate (serial 0xD7CE59D1F522D701).
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
        BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
        Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
        CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
        dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
        2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
        HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
        DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
        4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
        y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
        aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
        umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
        BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
        0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
        kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
        fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
        2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
        cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
        -----END CERTIFICATE-----
        """
    static let serial = "D7CE59D1F522D701"
    /// 16 bytes: this vector exercises AES-128-GCM under the AEAD_AES_256_GCM name.
    static let apiV3Key = "testMchAPIv3Key0"
    static let timestamp = "1624523846"
    static let nonce = "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz"
    static let signature = """
        tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXFlbYZTOQrVdG4b6L\
        fTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1IBLX70xptjL8\
        hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ\
        90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==
        """
    static let body = """
        {"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_typ\
        e":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"origin\
        al_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWT\
        tTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBo\
        kNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PX\
        pnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}
        """
}

/// wechatpay-go `core/auth/verifiers/sha256withrsa_verifier_test.go` and
/// `sha256withrsa_pubkey_verifier_test.go`: one SHA256withRSA signature of `source`, with the key
/// as a platform certificate (serial F5765756002FDD77) and as a bare public key.
enum WeChatPayRSAVector {
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIDVzCCAj+gAwIBAgIJAPV2V1YAL913MA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
        BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
        Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg0MDMyWhcNMzEwNDI1MDg0MDMyWjBCMQsw
        CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
        dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
        2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
        HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
        DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
        4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
        y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
        aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
        umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
        BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAM+tslqBxYwqL9fdvGG6hfy69sjfX
        UhBtBLWYugKKQCOWWLeq5dDWm3i5Cx2Rgiy9uc7RfmJNxQfIKlcoCNP85BjDoG1B
        YnVc6znlcrT9uHgseha3987WwZsFAQbcy8TLUYHzVB8gmDgq8O08xdIe0eczatI8
        t3Rg8WXO6Gs66JJ4JR+rD01o3FiSOQCRWhn19NSyDydsgPlOR2t9B9L+MkJwlsMG
        Krn85TnwL3qcInzRnU8X86faXXJrI0IJi44tECKw8ftngCl6vyNwNNKPDwdkcuuV
        8y3iBixO5IuKxEKEp2wGPV/4W1AXO73Z3Gb7z/1oxdgeO0hVqz1hBasTCQ==
        -----END CERTIFICATE-----
        """
    static let publicKey = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2VCTd91fnUn73Xy9DLvt
        /V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXagHQ4vGeZN0yqm++rDsGK+
        U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOmDeJf2vg6byms9RUipiq4
        SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B834uxl1zNLYQCrkdBzb8oU
        xwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGfy8wus7hwKz6clt3Whmmd
        a7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtkaSef4FdEEgEXJiw0VAJT
        8wIDAQAB
        -----END PUBLIC KEY-----
        """
    static let message = "source"
    static let signature = """
        BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4j\
        sKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6I\
        EqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+\
        hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg==
        """
}

/// wechatpay-go `utils/aes_test.go`: AES-GCM alone (a 16-byte key again).
enum WeChatPayAESVector {
    static let apiV3Key = "testAPIv3Key0000"
    static let nonce = "wCq51qZv4Yfg"
    static let associatedData = "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8"
    static let ciphertext = "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"
    static let plaintext = "Hello World"
}

/// alipay/alipay-sdk-nodejs-all `test/alipay.test.ts`, `checkNotifySign` → "verify sign should
/// delete sign_type": a real TRADE_SUCCESS notification, form-encoded here as it comes on the wire
/// (the test holds `fund_bill_list` as a JS array; Alipay sends it as this JSON text).
enum AlipayNotifyVector {
    /// The Alipay public key, bare base64 as Alipay's console shows it.
    static let publicKey = """
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jn\
        nz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFi\
        lvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm\
        /9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB
        """
    static let appID = "2019073166072302"
    /// `notify_time` 2019-08-15 15:56:25 Beijing time.
    static let notifyTime: Double = 1_565_855_785
    static let body = """
        gmt_create=2019-08-15+15%3A56%3A22&charset=utf-8&seller_email=z97-yuquerevenue%40service.aliyun.com&\
        subject=%E8%AF%AD%E9%9B%80%E7%A9%BA%E9%97%B4+500%E4%BA%BA%E8%A7%84%E6%A8%A1&sign=QfTb8tqE1BMhS5qAnXt\
        vsF3%2FjBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb%2FnLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugL\
        O20vOQz44y3ti2Ncm8%2FwZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r%2FU8ONNQjWXd0HIul4TG%2BQ3fm3svmSvFEy0WnzuhcyH\
        PX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI%2FXD9YCKCH6Ct02rzUs9i11C9CsadtZn%2BWhxF26Dqt9sGEFajkJ8cxUTLi8%2BVC\
        pLHsgPE8P0y095uQcDdK0YjCh4x7wVSov%2BlrmOQ%3D%3D&buyer_id=2088102534368455&invoice_amount=0.10&notify\
        _id=2019081500222155624068450559358070&fund_bill_list=%5B%7B%22amount%22%3A%220.10%22%2C%22fundChann\
        el%22%3A%22ALIPAYACCOUNT%22%7D%5D&notify_type=trade_status_sync&trade_status=TRADE_SUCCESS&receipt_a\
        mount=0.10&buyer_pay_amount=0.10&sign_type=RSA2&app_id=2019073166072302&seller_id=2088531891668739&g\
        mt_payment=2019-08-15+15%3A56%3A24&notify_time=2019-08-15+15%3A56%3A25&version=1.0&out_trade_no=2019\
        0815155618536-564-57&total_amount=0.10&trade_no=2019081522001468450512505578&auth_app_id=20190731660\
        72302&buyer_logon_id=xud%2A%2A%2A%40126.com&point_amount=0.00
        """
    /// The same suite's "verify fail" case: a notification whose `sign` this key did not make.
    static let wrongKeyBody = """
        app_id=2018121762595097&auth_app_id=2018121762595097&buyer_id=2088512613526436&buyer_logon_id=152%2A\
        %2A%2A%2A6706&buyer_pay_amount=0.01&charset=utf-8&fund_bill_list=%5B%7B%22amount%22%3A%220.01%22%2C%\
        22fundChannel%22%3A%22PCREDIT%22%7D%5D&gmt_create=2019-05-23+14%3A13%3A56&gmt_payment=2019-05-23+14%\
        3A17%3A13&invoice_amount=0.01&notify_id=2019052300222141714026431019971405&notify_time=2019-05-23+14\
        %3A17%3A14&notify_type=trade_status_sync&out_trade_no=tpxy23962362669658&point_amount=0.00&receipt_a\
        mount=0.01&seller_email=myapp%40alitest.com&seller_id=2088331578818800&sign=T946S2qyNFAXLhAaRgNMmatx\
        H6SO3MyWYFnTamQOgW1iAcheL%2FZz%2BVoizwvEc6mTEwYewvvKS1wNkMQ1oEajMUHv9%2BcXQ9IFvU%2FqKS9Ktvw5xHvCaK0f\
        j7LsVcQ7VxfyT3kSvXUDfKDP4cHSPuSZKwM2ybkzr53bIH9OUTpTQd2d3J0rbdf76OoUt%2BXF9vwqj7OVE7AGjH2HPWp842DgL%\
        2FYVy4qeA9N2uFKRevT3YUskjaRxuI%2FE66reNjTMFhbjEqGLKvMcDD4BaQXnibq9ojAj60589fBwzKk3yWsVQmqGfksMQoheVM\
        tZ3lAw4o2ty3TFngbVFFLwgx8FDpBZ9Q%3D%3D&sign_type=RSA2&subject=tpxy2222896485&total_amount=0.01&trade\
        _no=111111112019052322001426431037869358&trade_status=TRADE_SUCCESS&version=1.0
        """
}
