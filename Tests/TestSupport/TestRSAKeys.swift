import Foundation
public import _CryptoExtras

/// RSA-2048 key pairs for tests that play a provider or the merchant, fixed rather than generated:
/// BoringSSL in a debug build takes seconds to generate one, and a dozen generated when the tests
/// start held the cooperative threads long enough to time out other tests' database waits. Made
/// with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; they protect nothing.
public enum TestRSAKeys {
    /// The key pair at `index` (0 to 7), parsed from its PEM.
    public static func key(_ index: Int) -> _RSA.Signing.PrivateKey {
        // The texts below are valid PKCS #8 keys; a failure here is a broken checkout.
        // swift-format-ignore: NeverUseForceTry
        try! _RSA.Signing.PrivateKey(pemRepresentation: Self.pems[index])
    }

    private static let pems = [
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCsqrMo0sdg8lzs
        vV3qQ1KHqOsNjc9Rab/gb92PVjZcqa9dsj0Xwy34BI363j2y8T/rKNXeClPfxCWW
        TJ5WSF9GwuXfZkz2VW0P07LSmAjxUp/aO+qJzzhyGb/KhSMTpkt66E7yoGjrvjA9
        J8IDkF0achOEaQBLzuFXCsgDNBk80b9/nziSrtgZBEou6VRjgT8/uA97PeR/YqkD
        TIIlUS927WVbb75x7rcMNtS0p6Z/kUWv7ZtyXyV25bcljOBdrx9BQN0E4pBHRz23
        Dx70Mhl4vPHkx5CJwca8OJnxLS6u7M+wMxmYwHkzsgysfNJ2/gHeUKEHP2cnfsvD
        zEL/J88xAgMBAAECggEAAlGzoNV97JEsytg7SfF4Cw7rg03XjkQhmeHew7VYexOj
        YZqKhAZw2F81SfyQrxXa8i1k+/u/BycjCxsB2G5V60UkYcUFvRxGH/uLsBTvL9CY
        iY2a95ljLHMolo+FulaWNnMm1k7twdbW3odpbXNTsM598R4Y7Su87pacO6DIQv8X
        kBOWiiW3bhSzZ1PHRsfi0aICoof4d1LCyP8QMkc0ST1QbQ6ScWd/QTbm8cNl4oLa
        K1X3fUEJAJV6Y40vMU5rr10+EBdOvi2Bldg3xyGA0bO9fxcoZAqIg0JK3ptubz97
        obQBbaTsuVAeAOOpQ9CFhnZfOtlEW8uc/+SWks76EQKBgQDcs7+Aestmhkq/8Sas
        sDr++/fI0++6GnrvlXv1dCeXq9esghPzE/HlHo2Ku2dGhi/jZ5J5oFiB2W+Xxk0/
        /IDgtwBRYpNMiHoh1zAxCvb3Xp9W/USvOvOfZ1BMpnOSkAlJlBALdNbY2nhy7ygT
        pdj7RzENCS3rwD3JrYPEZHvBuQKBgQDISDsmd1m2/oK5RjbPYYFCg1ip9W8s2np8
        yh+ZK8ZUaR6whnk9mJtGMoqiHmCvr+C2o+1AJcbfotjwUoDrMoryn8tdE9ejSTwg
        ygsZbwCL1JdCGykqZJEQfVD2SpCXV7JWJGK1P81PI4qA8dmbtOyBr/I52EMB9xNo
        dMa5FyGVOQKBgHFEBooHew/Y58/uES0bHIv0AEyfCC74nBMNIprry835MSylbVuY
        5tHxhi6m0u/MuhL4+qFU+1dYof7AlLC8A+BPyuf5sSLb/+ISL/dbaze05g2c2X0c
        wh8SxJEx86pKJZoPVNSsV/7e0GYb+vNqcBs1hCTuixSsiolQdYl7EFBxAoGAVL/b
        58cRO5IvFt9TSiXkYJTb6+9jgANjWXLeNB6F6iohRmlg3GO7MNUqPLfGChHOcPqk
        5kQWB4QNcIQ48U2N5mUf1N8UnI/c1bMpRzXlcUYgS2Ta4olzqRqeK9oZnTEK0dDL
        xA6ffiF39mBgyLaiba5aPYf5stcua0Ee5iuXlmECgYBW136aigEXCLaOWCL17Eei
        PtLWMWV4ZM5r1SdATAldYZGWv4vOYz1oUdiDRN5ay2UF8IIUWF0m2zsvi4rzal5Y
        NIR2FDhD3uGmlVMR+b2+uhIn3dznt+OT5L9qKL27yGrbtEnK1PDCpVZ1MrTuvr6w
        sL4lDsoAOWOY7wZOW4Mk2g==
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCIsLZynC/HwNUF
        UXJXqf/jiM80jCf6jj02AOMgcmCcBSV6sPHxqn6VtWSaSRtHypjberu72yeiyZIC
        hlwWGvI84HPbVMvmsYiwz9Tzs6r8Dg3TgfD8wXhuXvbXJRjwzq2sUYrw2IET9b0N
        nDwURsa+XOSWLNM6GgOouCAP/7YGd+8Vx2P1e8UOGdhyvLEV8EhFlX+hUnh+TNcI
        qzEPkYbx5zXA9OVrYgq1uq4u4Eu/VWXKW2AD4To0UavHuNAqqEaKmKXiAubUo/4S
        /LQFow72r9RoBvMlVWDUIRIqz8y5VKLshjXTUlPUIsE2FkG82dYyVa/B/N8RENZJ
        7SmogC0/AgMBAAECggEADyW6CihZuSKa2JyGdcV+eFn8UD/p3D+v89CUWs+h+hgt
        55M9NIEmxvNTgy9vyPxgBQ5sSGyIT2dT+VinUsHIr0tWO2uBrv5kfeeCG0GBRK5Q
        BOzE5lWQQXbflsbjJShaIZrlsTvkze/w89Wo6LxRIN5NbIDqJWmllyhUUUGOi9fM
        Hq4hVC6Zl/vHt2lLFvbA04WEBFCv/QM/8pGVH0iVggRRX1ZZ37QuvZ19WJggWd02
        qtErVZ0OdZhCP6fI2pnoJaKervvN0MAFAlqsVkdkhoWA5jLrjAyBdgPum66sGksM
        ElPDTQ6vyHqXrgjRvR6TCCGgSSPLo8iwwp0VPZkg4QKBgQC7P5MHPaY0sQSIusop
        4huzlYQr934wUHFPTkfjpV3dC55udMgCytYzDaSDj2FIpMwGn8rnIAMi3j+H4r1S
        pOGM0wx4ikS9u6Ln9VKxE+0gfjyhidgpD3NwavZpkv0OlkBWymbTd/1jngvTiCKw
        ERL2tge2JzFjeVI3Z4hnsiXzoQKBgQC64O3hXm0cFwd4CYy+tiLOl9bUK/IgrMho
        oHFyyLvgF5rF3U68KvypHd1qgooion3uoYUQS29DkbAU2I5E6nCaHUAz+8/3+bnf
        hMxEcIfQeeTqpur15tuYBZKfcRd4JnU9DQgUaJ8OYQupHVcRpY/X1EOq3Yl8WQqn
        BCsPK4x03wKBgEgesmiFjDCbRZ3MI/WByx2eJuwwRQAi26GqCvJZTQ/IW9s7S5YX
        veyoAodRgCzUnGiovyPKJqsVYu7ZnAXqz5zH5PPAfb1+Ob6RtKnTfO+Y741gZEtc
        UiAocoQzQxiNMna7OmOUwZnO08tDkeiyitVPQyUbb2Ba6BnC3Lzj1s5BAoGAC1/n
        esE5mO0Z6keChpUldzesvstR+IUryZqCbT8kmFY3eHWo9jEToeOMd5AsgkErsxun
        sr80rYMvmYU42579bZP8NW3NUcWkd6Non33N9nWE5nd0c7UyhoVIUGYczJZiqm2h
        oURg8gocIJYFl7BhGfz0hXDojmYJDPNm/4xiBzcCgYEAj7vP+njr85cZrZd2PCUX
        a3/CwC0fc13xMavDP3AztLVELdrJL+vfphUcjQxN5A5sqpSHeBXPR7OKcARHzYIe
        bQ563FVf1VCFGLfSbEdI88gmOdMID04ep8wNwQnJOUh0FTPIXG1QD9gIZyCveusa
        8nFMp44Ac8qd/RnLFkYH/+4=
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCirw6FPVxEHZbw
        i1QDPFprlmmAOKw+k0gRWKV/v49BJ4zYxuz2wpgxFlIT57R8NHgJKQu0F++lO5bg
        YTNRnxL7P1u9h+6O5hKCUJJIKCB0ZwuzVudQEsfIJz62zdxTkDJSdx2AOox65QoL
        UejltLIX/lb4LM7LuiLn/jLRPwKHh2yf2R9HlDx5coK8Kpxwyu0TkkH1PhxvTSp2
        G/MGTkd3+KBU72Rw6r+NHemtlka8iqVov57HKEv/SXgeZ/cb6RGVX9tJCSCNd6N1
        IjJz+ZvecN+whIsY1EsfBze4THJ8iPI9PesVeAKmFwLkK61Ht2kjG0c4zQZfEjzy
        ZBIOt6zHAgMBAAECggEANPyCZLg/EHp4uoEOzH0AUFFtrFMJGtp6mxe907VvMb/x
        enuUG6z2x+omspABs4CdZhJl2vL+3Vjiw9M01U1T79xLg5g+BXH/Lk2Sz4iuRWt4
        nqFb9rMfOdw6a2zyaY8qLLzaMXUgYzitRFGZ4xMu/GydI/joI+fMzbX4FDoLF1vp
        Hbfx0gZMPTCiNpzlcyrmTWPdkeYxP4xGO7KMMBWqGQqL6GZbSulVrStccihApv0o
        hqC06CW9q6/CNj/WFtFHlO1DYU3uOlJm1A8aoiv3I7EnLvLWMlCW1TkHAHA8ijPH
        Dw+XyCvrjgnN6FwmoyG0sZMR1Xvif40CukBgmhnLoQKBgQDk/QcAnr5SnlhgAG3c
        sqgODUKWT5JWpupfuclnHQHtNeb70AbNNS+LXD4e2j8JX4f2pUP8MtxFitNNShmI
        W+YRJSQUtPX50m52YZ07N0NroTygpie59cSUKwOLBskTLFoEb2YdO/KOE032LvMO
        1L+QwWG4ZxaktZ5BTUf+Tl6wZwKBgQC138TwVhfnF3J8BPv1TCMU2LL/knX2qHKm
        Rtohba+/6/A00k8qe2znzOkmzQYk7KMH8oLnC0LoFtBYV+Bzhwim1cT60d8wxyEf
        5vi7woAMLgRpvCMOX0mgu2uZPzWiBqGnAR+5FJK9ttOUjW1aV7ELs/6oVwmrD5Mg
        Ohl1WhnkoQKBgQCuhf55RYOu+kpG2OzioTOeihKu9vSEoHDPBo1uzlfyj/t8/n7A
        lgGniGU8JICYxzucCzd2ltj1E6qaJJizKb9+X71RHt6+Sdiw1xL719HFzTylAB4V
        CDCL8QChTEmiGFJ/QNwl+dOS3zmzIPNU4Wcjj4/H+KH0ZQu5n4n4U4itjwKBgDfx
        qAOBiAK2jKmnYtVWYSglbBH/PDfuIq4Q90H3Gmt/qLimxGE97Ab1WfZsdGphO9jS
        +P8W0LLRaa7zAQCoVbnz4Y6BhhTb+81zX6lpr7ePZB4eF+5w0xYU8IkID3hSb+EO
        EHL+6BBhL33vbuauOLBv4nJnq3qp5Mix9mjJmVNhAoGAK18CHicBu9NuMDObRODO
        35oGkK8d7qQygBorWnJf1TQ2/ksCWEQK3mvacf+tC0SXP0vauNPC1sXwzsryAPza
        jlNIXptOEb6RxZvjFJ5jiWAofUrjB447PwE+T+axoidmWqxQwHij4zsN3lx7ZifS
        tScc5z5ZDwKXKO9Ki3pdJ6c=
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCZncBiRWYhf76z
        W8EoGavU0Fu3vgWZJeGttbTY9AkMiVylY1vN7fTN/71yKDccnPx6wJckeCN4246v
        FdCFX7Hbire6dhGv9QkmngL1SEGHa0Bv35cZnwXiIx1LOFMyvxv181k+V02PKGst
        xUIG2sYQd7POSRIe/4dCvLf7T+7a1wI84ktD+W3OXGSieB4gQWSj4HGjHHK3qUSI
        zKpVAEJIaGwc3KHAYQOKMHgm5ygVF39Af67xzdg6Sdi/xr0u5oe0GruVRWzFtXUR
        qaO5ML+xk/8qv1HCb3zNVusQHZBeNQ8/hVkgQku0M5I55KKkjXqG4gKAEk1kcqoQ
        2eDxR+grAgMBAAECggEADFL3BUTmEOS+97eLw1wHFUq/oPnr8kGmXZmI8ClPGvD5
        b53AcFpmQnfOMUnMQ7QAhkr/Ls871ICUB03ruoq9dr+/rIQea4xwEIFEYXzlIChY
        zuDhFKgiZuZESmDMo/MBgXWyTWl5pA7GrBeTckzvVcQUtwVu7Ve4xUzldPiqHZpa
        4zO7GvopScDQIxnpgZ7uVccCG5gS8/UQMUPJqR35mWbAFowWtx4MprGh6MVEqd/o
        r977Sm4sOUllDlOWGhcQpVWBEMJHQc39LiEWAgPfrgokZtiCZdM6r/vi/OJTTuzI
        J/sUdUgPsgXmZq6PsRew2KJJxZGdhN0dWQe2vGy+oQKBgQDGzWdoUSveHCEKD/c8
        Hpb+Rh9wIhx+vc4d0bhj5SgBmICx8E0ftq6UvMvHL9rw7FZOe59Yvfnoon7HRjgu
        kS3U59VtZtFGK73824iXZ8xxe8GpeZaDdoHLFbh1WTwJKgykpS5xYWnvdWlzhbjf
        T8dfnLvyvwYLBTiYb2/t/EKq0QKBgQDF0DSwvobP7AL/AElJ6c5QwKUrt7fRMM5q
        nwIPI9GxgwGROysn3VA1QQbnwBkHZcOWgINIeK57M9enBhelY6zmMdbvmBLoPttE
        8f/ayTZ+ZcybWRCYZATOeQFl/TPhzYaPAUl0jr5o8Hy4yaUWxc/4/c2QJ8sRxCYg
        BB/EbDBqOwKBgFd0OI89VgzpVud0SpCZ7FaDRoUvnFVs7eVUQsc/IbBCBCtCyMqw
        tHAd9Y70UF43uWfhHiINwIhEI31KOKDToNPOAKeV2W4DBBreAGKKePdbN8B0CnBe
        i45pSbHlxXFKnDE5sQqTjeSXRAJbyw4BrHU1H8ETo3bpnxH/w79vf2xhAoGBALBm
        soYm8bu7YRSb4b9rI9Q5Z1HsHJ0NJBZKxCBSNe5RwHUNybdcEenbmlfSo79IDbpJ
        0kkvbZFqstY8hZu0nnwNV/oDqGC5pPn/wMUPiGwBRgwGydjL4MlreUbFHJ4xlNw0
        Lpglr0GPq/lxwKnlL0iAtO7nvZyTSdhlNRsJy8b/AoGAOTpfKD50blAKH+DuWk0F
        j1R8w5lTHYB44gk+VAzepJSUULGeqmwR2wUHSp9SgH6IXJqDZd5Tl43sZQlAjpVV
        RX/DAcuSlmHg0sHFSh7TGKagtra5vsn2eEJOrX9WJelj3/ZbVlcTr7i9wajWzZru
        mTv/nExAtbAOsjmIxS5XN7c=
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDGr+UtuWF++epH
        NqZ8RrD1syRdjuWVL8LRr7U16wSnPz2u5LVHF6jVC7kYgikZfhbPQ9rDIDc0aVcd
        KwHBNRjYUgKx62q4KEb2DYeFpJuUqegjZieTZibKmma416TPmvOWX+LD1s5RQBj4
        u86seuDfCmvo8BJFeaqCPPFmmyUhZZ+cNHqpPi/GDDPYeZN/5wprDcC3NqhIG3Ul
        mytQxS6+zHKSBeZIpusvzUIIvDXHk+r8CotwvJc4aXgfkZRzImRp2R58Q5jHW1bh
        SHaV1hZ8qpPFMkVawxUQ1aMcqr5z1hxHhq+99iegLalfM0/xFh9laXFfZwR0IsQu
        Tq3IQNbhAgMBAAECggEAYkRtv5Mf9tqpNgaAChg2fpbXBhTeVM519xqFsACoYQWk
        vuLsC5jWjmRJbCc4J50Wr/U59ebxltEA3nK+X+4gdyD8pz2tnx6AlkJzxDP5JOpx
        30wvh7Xuuqbp5kL1hx52mmmbMMwFZ+chUqgknGb74CR54ZAXIVh+7gIxTNOv5hdK
        7vPPxju8Vu18FHrHki5ISiTmOFfrZwNFI/KfQl9M07FAXLfaMC42btYr5hIkE25N
        Oegq+OlWuRIfHi4NbE0opvoLzmb45jOlO2Ot9ZE1CySBp8Y7jMBPQPyLJaCin7ML
        ChSqBWO3hLZqHIpFQz/08yHPh7GwGXc38322uNNGjwKBgQDwlH1JzHaoqR4mI44o
        5XpYHl/CHO6bE9QWwLCf3cPXzWTwHMlQm/BkauHbQkArUO0DIfzArt/xlHrNB/9n
        LwYDgfisMpJ9+L/4kTs7u47A/u0lDmYL/KfY0QyxXLYYJ9imaHI3nrjn5RzuLxcS
        Dp8h/cJyuXNbuBwyNCy5q9Yx4wKBgQDTbAN6sSm14yVe5NdrHe0wOJHsIKDZpJ0j
        obx2aL7ORuswCQZ19tL6VuV658AXpADAXkk5ma/CDMtmCLWtYTfUBWvf30rfEM2c
        mHn9XoE0i8xEM37NS9TndFnvCRimf+HX6Fi59XgW4A5P1uVlYdA/NLZk+VYo8s+q
        FHeOxKqfawKBgQDZ2n0B4QbqgApvGu9WlUcOmKK6Epz3DSOXXvISMi1wM+xdipO6
        TRuIs0jG1d1p3CRkG9jXWwQrrPruw3lCJNDbSEy5EiqZrDGak1kCJDuHBNIWJk2+
        ORJ9QgCuc3fps9t6BUa4myBxzYU/IqFPlrH/g90bKlgODFBsHdcKY1LZZQKBgQC2
        zdwsR+cCyAZWCJRioBun6CH0AzpRNU5RstTbpTHl9dgBTqxxbxt5LY16OcwUJNAp
        hNzXmxUnOhzceodsBHVbM9zUU6PPQB4oWoaQFxissHvMNKJdLEZIYogocLsJq+VA
        5DtjfuV5Ef4N9oeeo3aGUDOtFxHykhAQxWWi4lWNRQKBgQCvZiTH7r5BqkQxos+j
        KrxALRW3XhOj/S6nGAWZkgVdxrtPfbfVkGQJIfnS70/zmFRifsw1y2XYg5NXxQ6H
        Vt4OD5LBRd1vhNOmWLyjrEFEx7oBSPJUjVKkVgoonM+UtKR/JY1WO8KRrq4gb1xd
        UlCL8mY8XHppu+B0HCnQQ0BHEA==
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDRp2EeH17gNULb
        4CWSDHtBpnjq/jI28QefYpoYM8mwhqzxHRqi/HWaTtoY2RU95xlf3/16gjcdox4Z
        +AO7T83OLnD0QRz0yi7Wv0cRwy2vrrWgqeoZVLpvs2lJEiR/PbVatYtQKQyw9SbG
        0m++MGNNcTs+V7V0qQBaq8DI6CCAjkwcw2V2nfEApcwWXKJh5sqcCsJVDaw6n8oq
        OMEj+PF03+bwiWbQamWMS+/Eq4btGTmcUMwdbrtgu9Tt3wWhdpCXWUYnN75blXMZ
        YzcNo83z2PFhzdCEoOGnn3Y1kBHMWDtxQIdGPEFNMGL+7luD3j1DLAXWFivgRVgW
        sGtOvgXzAgMBAAECggEAPsafEl1zU7AvAlZl+YrKN1io+Tg/Aet/DE8Cc//Bwx04
        WIQN70Kn1hoJPQp3TU9O7kHMDOxDo5itkToNp/8X0UZfpQuAJ54Ik1234o4uNl4a
        XW6zPX18y6iNfIc1rXHlRTF58vkvpybowvzM38ZuXYhrpFmv6CwYgo3ODnpPDR7D
        OBPRoH4CYGD6mq+gS6Fcq9SiiCWM5VMhtnJdo/qVwBXobKh5THzswf/es+k5xNbT
        scZjjjNagENhuyjFmBzb2Jpl7EAm7fXtcMLPPsDiwDcHUC16sATBByNmiWfMof51
        VX4fAVhWv/Oj7l/0gS8VJ+SdePSOwS37wbe8ugPTUQKBgQD+rn5ZBn6/EYpDwTqw
        CcGwHBRrK3zXZ2ujmXN0FxtKvzCWmFkUC9dzK2j5+0+iIrL6HzlGVQc6I1RmBhgM
        bAwBjCrP4hd4TBTVPOv57HyNfWPfFm+josKlf13dxmKdUUtsmEJuXAQCCA0DVKXj
        h+85AV3WDYJ2An6EpYs20YMP4wKBgQDSvTbuO7+jS4mSf9qYFclZmUygMcOJ+kSy
        z5+Qw/AlmGiRSNeKyulHfSRB01pRwnC6zPm1iPb/Qjgpof8SnCNFjvOlSMwj7o0W
        6kwfgI3Q7Z5Y6fqRSaPUTYJClyG9VHQXlXt1eUlANksyZZR6+EDwPtWByYC58k0A
        JzCj5SnusQKBgQD8WpZjTCZG2PBx1oN6bxB2mjw5POwE3Dsx7hkSTNsEI5HXhrmt
        PVaMjdUE7lmnxE4nvMyZviLdHqjANwWZOW5kEilRtyueTXTPHgCMsiFwaXCOWsLg
        F6RbLGssFykbzLO5tN0OUSq/gI60YCnH3KfTimEaemRs3mfSs93PwaXmFQKBgBHf
        RidSHeCFaXdpLGq1fkwA+kSjs8eh1+2qOggW9ejaUhPwL4dvyfTsIgULHZ/Nc64D
        8DF7GidvwD+Xo4A6ias+gl9EGzv44TJOUIJjbqOHY2R7A2sK6b/5itCG7K+X1/ig
        DsZZsOKnOB1gDAWZxDgbvBOzuR0L9YfLyw47QyEhAoGAD80dUNp5QhN32uj7tzp0
        5Cb4wisQSEOjNoExTo1wXYZcWZg2doluaW3xnEkCqfSA6SUQksEHIxQG70k/cy9a
        wvjGzvVpmwI4n0I52/v2WMtocCZUeGIsNi5S5wY4bnqI76INzFzdeOoK4Cai2BJE
        r/bz+sdLLy4v5qg4Phk7/d0=
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCjDuIAA+6Iy5yI
        kMsj9s0PkaP53/rb/oF/nwpdHfBKLQnAG5r8QVZ4mCqSx4xkFcwTpIdFcv6xSP5n
        0NX1Sd+YO6N5TVziRpwkF//UEenc2x58HBeek7bgSstwtmGX3Jd9TYkdKZfhgLkM
        rkbxXFLNoo4ZlKgAmtMZtyzGL/OhwnrJlSLWWpEtJW5JPKLMt+U0DKpR6PeshQrH
        jh+IeUget03gxH8vwubUiud9VMJnqfxUveFlvxY+G8HtC+PizOE6mIESqb7Tbszx
        tiMzvN8VHCwjCVt76VfYQ4yshaTjqROcV1b0WodKh8JzJkTSiyqPklbzGX40VbWS
        fCashaNzAgMBAAECggEAJms/ybQjdFzRJYZELtWcTFJK+fmRoFsPhRPie70tnDSP
        axG2C0CT0Lc9tLbKt9xA6NHnw2/MXdYuhyR3/SLqSXKn2lFllLUBXim/b+bGnPCN
        9r0hvY3dVWyaEZUPWpoxoWbu6w2dSRcswrWfZogTxHrME2/ow7e3DISRyqKKu254
        ICa4vXH0czLqiK7rAmeGlqoNW5ByfgmDYR5Em46I9HNcg1LNy0mPmge0nPheTv2l
        91iPXnV7WQxWUE9ACs8hskamP7XXMPODd1av50L7ZhlkjRhSKDhfMJ2mBIs69JaP
        bLeKY7yIItT2gRG+Wa0wvLipNavD48HjKxBc4jY78QKBgQDerF80/hX0EHOvi1kp
        AnmY9atAlwJuhx+azTOPNuqTsI7Hdqe919r7HjQRVRErBkd6ybOT8cwBT03NmvAD
        B7zutCaQqSYfS9+6xCnjLKQYqtUrX2vs27ag2qfC53N8OX7F+ltpCwS3u9parIjq
        gKMq7TygXy5PFp9bIqVixvFHUQKBgQC7dmG5OKMDu1AxMO/wkjCv1CqvtPO3AMYX
        tfS1cPJkcDV1APkmicss1PaYRj0WfdwDFLWXEgFK/LghfKpVUfH9U+YwRHFUh+uS
        v4mPcubUPY0tmfaOF2pBQ/iijLlfIxTswCIO/3o0AGwUaMiMyW4BcVJS8U6ShYYH
        EDqi3MyVgwKBgQCp6gyIam6kG727MXEqyvmwz54LHnA7mR5zyKvUV8puQmbhK9ja
        E5HE14pRw4DjPNpkhu9iMDtEsJglEVqeZVQ1LgDTmE8/yG0DnlZ8RH8/V3RssVaw
        mgPlAJTNNEI6g8EKH32LTV4fOdhoIoojr19TDU6a7aZvsUqOh4R+OGK60QKBgAqD
        EenMBkAgUdfgUaQg3oANmrMtp3j8nx8XQfims8D0FdtQyafilDUYYBeb4LMRLbQy
        hhhJly74Su79yaNtK++zs7XDMMO3t3sMKI+VtuHx7ae/+XZwU7IDOL8MuxxdoD/C
        amaC5vxhha4DTjOu2+9SxnYGOAy5VhGxVEhrr0E3AoGAQshUgVD0Vv4i1fGAECRQ
        L2FTM81s/c7gm/1Bxw/ec7eCX1GPuYz1oKwGvWoxefB4Lgatqxs90lep/lULFrkL
        D939LW53bvL6l6zMnX6p1d8xPabWmAbEUhadpNtd1QmPGv9s1ujvbAYe0sTivthd
        CFOmev5ny4zehbkA4K8/Spc=
        -----END PRIVATE KEY-----
        """,
        """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDlSRz9HxeRmZyY
        bGLl84X/gKeQB4DZrjsBiIYE95HHrH6rZmUNxURCiohq3+XgA5lpd234kkpQbC32
        Ac9x4HAr7iI4+Zridj/Piy+Y0QLUoQOhSBxleEnApWxfw0GFuZ8kVcKg6mRQusMg
        CxdiJFvg8KvLO8zE/iQQUVlzX3aZEduCxqzLdFLCQzAVK/OwUp6FKBOEr1AaSiLz
        LekXkHsUXYUi3aX1wZjOk6hYU5vmWGw+6nA5NTrtEGeeo0nmnfdamZcfffYJ4Uhc
        JojLsuEP+yE3QMNr8Lyg4k6Ux0mO2xpLkq4/1bIxrGTvUDHN5rJwYa4n4xIXli60
        PIiwMKrPAgMBAAECggEAQ181ZmcRbNX/PoZylPD2iboLAnZB9TSN4Ah2oNUB//L+
        kWyX+vDg+tBr/0Nk72r/VA8kwCp0Ladr5eJoSyTQsQfbBHTLfwmR/HEAfl3EACiD
        wYtH1MUAntu8uXLNOPbu/SU5+ECHU3VdSngX2d2nJbRyNliO9b9bZ3QP3afKWHVp
        ZNpn1QemJ1Bv/J2k5rzKEZplbRBIRLkSjvV3EgXruNXZ4RuCnRYJe6oQABRbQGUe
        W0UCi7GD+9KZBuhiSlyIqabjBwXpzq+K/7fvtwMq6InXwYi4pqQvZhDzxrzWkG2g
        82D0B4ll3k6QG1VGkLKhw3BkHrlvSNMxc6M+QzMCmQKBgQD5CQzgamvSnOrg9P95
        9X5z3wALlruI2a3JhxDmQeIpSNQYulVWDAgAA8Gomf3Jcotq6ovnpQQbRW/+/ys2
        oTXaYT2t/VYQt0+O/KKWNBeW3v3diAhUsnvegA48+l6nzS9KeRohYp+XxB2ktdm1
        JX1HFaCSPGUd7kV93bO8OD1vXQKBgQDrsqqDvE1wrBw+TugVwT2ThOb4bDimQcas
        WVr5MK11c9RdYwYMnIuh46VgPeYAwhjFLtX3024UkC6JEQh4exAluA1f8SD8OEu/
        1/+kLCCTPr0NFN9O10be0PDdiQMdqkV4d9JAeJWZ2oWPL00eJvCxDaXZZVYScP1I
        CAt3J+rcGwKBgQCXvgD/mTjb20tvCTnGGWUUu3OunAjnKSQwoMEWXFyvJTY/XwJy
        bOBPCfrtfe9a2RXEbugSnMT0zQmiCd9N6UsEJq5LnwrbIqcyjBORjGo3PubXHnVd
        DmhVuhdy5mfYvTismz/lyc9OzWv2mevu6cn9D1uI344Jf88OE5HaBTbB7QKBgFN4
        FWzLvbz+Jo5mUUiLA6x/b3Bgmvs95gbZKh9/fp5Oo9FipRzIP6bYQJPBt/dixXTn
        Lj0yshQ0L1a5In/QTRqegJYOhbjskt7gtpbETdD3cen1D1QTZvS3l+VMhT73Mt0D
        ygCs84Xl3lCj1rKr5ac+BxLjEUU8oGXm+3B6QXErAoGATINCKfTnZIfBrwlJSYdq
        IMJmzPgJmxjrh8MgAkG98v8WVSvdIQfKqnp8FkfhrxjvH1c1W2mxL1KggUfREMzb
        yVdIO+Kl+QX34EP8zCLNzdEzxym8Cw7bHdW945gnKx76x5D6VnES421QsGYFQsM+
        b5CSqgwj45pqdYNScOhcoHE=
        -----END PRIVATE KEY-----
        """,
    ]
}
