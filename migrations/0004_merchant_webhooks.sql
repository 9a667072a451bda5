-- Merchant notifications: the merchant's webhook endpoints, the outbox of messages to them (one
-- per event and matching endpoint, written by a trigger in the transaction that appends the event,
-- so a committed event always has its messages and nothing is sent for what did not commit), and
-- every delivery attempt.

CREATE TABLE webhook_endpoints (
    id text PRIMARY KEY CHECK (id ~ '^we_[0-9a-z]{26}$'),
    url text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
    -- The event types delivered (order.succeeded, order.progress, a merchant's own name…); '*' is all.
    events text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 64),
    description text CHECK (char_length(description) <= 500),
    enabled boolean NOT NULL DEFAULT true,
    -- Why the service disabled it (410 Gone, failing for days); NULL when the merchant did, or enabled.
    disabled_reason text,
    -- whsec_ and the base64 of the key; the previous one keeps signing beside it until it expires.
    secret text NOT NULL CHECK (secret ~ '^whsec_'),
    previous_secret text CHECK (previous_secret ~ '^whsec_'),
    previous_secret_expires_at timestamptz,
    -- Health: the first failure since the last success (NULL while healthy), and the last of each.
    failing_since timestamptz,
    last_failure_at timestamptz,
    last_success_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_messages (
    -- The webhook-id header: the same on every attempt, the consumer's idempotency key.
    id text PRIMARY KEY CHECK (id ~ '^msg_[0-9a-f]{32}$'),
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id bigint NOT NULL,
    order_id text NOT NULL,
    type text NOT NULL,
    -- The body, exactly as every attempt sends and signs it.
    payload text NOT NULL,
    -- pending until delivered; failed when its attempts ran out (a resend makes it pending again).
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt is in flight, when its lease ends (an instance
    -- that dies mid-attempt leaves the message due again then).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_messages_due ON webhook_messages (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_created ON webhook_messages (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    succeeded boolean NOT NULL,
    -- The HTTP status, or NULL when none came (timeout, refused, TLS); then error says why.
    status_code integer,
    -- The first 1 KB of the response body.
    response_body text,
    error text
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- The outbox: every event appended to an order's log becomes one message per enabled endpoint
-- that subscribes to its type, in the same transaction. Types: order.<status> for a status event
-- (not order.pending: the merchant created the order itself), order.progress, and the merchant's
-- own event names; `finish` only ends a stream and is not sent. The payload is Standard Webhooks'
-- recommended shape, the order as the API renders it (without the checkout page's stream token),
-- with the event's id as `sequence`: an order's events commit in id order, so a consumer can
-- ignore a status older than one it has.
CREATE FUNCTION enqueue_webhook_messages() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    message_type text := CASE NEW.event
        WHEN 'status' THEN 'order.' || (NEW.data ->> 'status')
        WHEN 'progress' THEN 'order.progress'
        ELSE NEW.event
    END;
BEGIN
    IF NEW.event = 'finish' OR message_type = 'order.pending' THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_messages (id, endpoint_id, event_id, order_id, type, payload)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.id, NEW.id, NEW.order_id, message_type,
        jsonb_build_object(
            'type', message_type,
            'timestamp', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'data', jsonb_build_object(
                'id', o.id,
                'status', o.status,
                'amount', o.amount,
                'currency', o.currency,
                'provider', o.provider,
                'merchant_order_id', o.merchant_order_id,
                'description', o.description,
                'metadata', o.metadata,
                'expires_at', to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'created_at', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'event_id', NEW.id,
                'sequence', NEW.id,
                'event', NEW.data
            )
        )::text
    FROM webhook_endpoints AS e
    JOIN orders AS o ON o.id = NEW.order_id
    WHERE e.enabled AND e.events && ARRAY['*', message_type];
    RETURN NULL;
END
$$;

CREATE TRIGGER order_events_enqueue_webhook_messages
    AFTER INSERT ON order_events
    FOR EACH ROW EXECUTE FUNCTION enqueue_webhook_messages();
