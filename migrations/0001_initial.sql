-- PayNotify schema: orders, the provider webhook inbox, and each order's event log.
-- Constraints make bad states impossible rather than merely unlikely: the application is one
-- writer among possibly several instances, and the database is the one place all of them meet.

CREATE TABLE orders (
    -- Opaque, random, URL-safe: our id is never guessable from another order's.
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{8,64}$'),
    merchant_order_id text UNIQUE CHECK (char_length(merchant_order_id) BETWEEN 1 AND 64),
    -- Minor units (cents, fen): integers only, never floating point.
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider text NOT NULL CHECK (provider IN ('sandbox', 'stripe', 'wechatpay', 'alipay')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled', 'expired', 'refunded')),
    description text CHECK (char_length(description) <= 1000),
    metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at > created_at),
    CHECK (updated_at >= created_at)
);

-- The expiry sweeper looks only at pending orders, oldest deadline first.
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'pending';

-- Every verified provider delivery, once: the audit trail and the idempotency key.
CREATE TABLE webhook_inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('sandbox', 'stripe', 'wechatpay', 'alipay')),
    provider_event_id text NOT NULL CHECK (char_length(provider_event_id) BETWEEN 1 AND 255),
    -- What the provider called the order, as sent; order_id is set when it named one of ours.
    order_reference text CHECK (char_length(order_reference) <= 255),
    order_id text REFERENCES orders (id),
    event_type text NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 128),
    -- The signature was checked before the row was written; this says what processing then did.
    outcome text NOT NULL
        CHECK (outcome IN ('applied', 'no_change', 'ignored', 'unknown_order', 'mismatch', 'contradiction')),
    raw_body bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_event_id)
);

CREATE INDEX webhook_inbox_order ON webhook_inbox (order_id) WHERE order_id IS NOT NULL;

-- The durable stream log: what an order's SSE stream replays after Last-Event-ID. Events of one
-- order are appended while its row is locked, so their ids commit in increasing order.
CREATE TABLE order_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id text NOT NULL REFERENCES orders (id),
    event text NOT NULL CHECK (event ~ '^[a-z0-9._-]{1,64}$'),
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Replay: the events of one order after a given id, in id order.
CREATE INDEX order_events_replay ON order_events (order_id, id);
