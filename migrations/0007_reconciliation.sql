-- Reconciliation: asking the provider about a payment whose callback has not come, and closing the
-- payment there before an order is expired or canceled (the reconciler, PayNotify/Services).

ALTER TABLE orders
    -- The provider's own id for the payment when the provider is not asked by our order id
    -- (Stripe's PaymentIntent id): given at creation, or learned from the first webhook naming it.
    ADD COLUMN provider_reference text CHECK (char_length(provider_reference) BETWEEN 1 AND 255),
    -- When a reconciler next looks at the order: a query on the schedule, or the next step of
    -- closing it. While one works on the order it is moved a lease ahead, so no other takes it.
    ADD COLUMN reconcile_at timestamptz,
    -- Queries the schedule has made: where the order is in it.
    ADD COLUMN reconcile_queries integer NOT NULL DEFAULT 0 CHECK (reconcile_queries >= 0),
    -- Closing at the provider has begun: why (the deadline passed, or the merchant canceled), and
    -- since when (giving up after PAYNOTIFY_CLOSE_GIVE_UP is counted from here).
    ADD COLUMN closing text CHECK (closing IN ('expired', 'canceled')),
    ADD COLUMN closing_since timestamptz,
    ADD CHECK ((closing IS NULL) = (closing_since IS NULL));

-- Orders open before this migration are looked at once now; new ones get their first step at
-- creation.
UPDATE orders SET reconcile_at = now() WHERE status IN ('pending', 'processing');

-- A reconciler's claim: per provider it can ask, the open orders whose time has come, soonest first.
CREATE INDEX orders_reconcile_due ON orders (provider, reconcile_at) WHERE status IN ('pending', 'processing');

-- What a query found is recorded in the inbox beside the callbacks, as a delivery of its own kind:
-- the audit trail says which news came by asking.
ALTER TABLE webhook_inbox
    ADD COLUMN source text NOT NULL DEFAULT 'callback' CHECK (source IN ('callback', 'query'));
