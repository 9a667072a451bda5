-- Alerts for people (bad signatures, unknown orders, contradictions, mismatches) and the keys that
-- make a retried order creation return the first answer.

CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    provider text CHECK (provider IN ('sandbox', 'stripe', 'wechatpay', 'alipay')),
    order_id text REFERENCES orders (id),
    message text NOT NULL CHECK (char_length(message) <= 2000),
    details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alerts_recent ON alerts (created_at DESC);

-- An Idempotency-Key seen on POST /v1/orders, with a hash of the request it came with: the same
-- key with the same request returns the same order; with another request it is refused.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    order_id text NOT NULL REFERENCES orders (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The hash of the request that created the order, so a reused merchant_order_id with a different
-- request is told apart from a retry of the same one.
ALTER TABLE orders ADD COLUMN request_hash text CHECK (request_hash ~ '^[0-9a-f]{64}$');
