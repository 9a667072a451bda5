-- pgbench script: the service's webhook transaction (OrderStore.record, a sandbox `processing`
-- delivery that moves the order), statement for statement, WITHOUT pg_notify, one statement a
-- round trip. The service pipelines the statements after the lock: webhook-pipeline.sql is that
-- ceiling, and this file the sequential one beside it. webhook-notify.sql is this file plus the
-- service's pg_notify before COMMIT; keep the three identical otherwise.
--
--   pgbench -n -M prepared -f bench/webhook.sql -D orders=2000 -c 32 -j 2 -T 15 URL
--
-- -M prepared is the service's protocol: each of its connections prepares a statement once
-- (PQprepare) and then executes it by name (PQexecPrepared). It also runs -M extended (PQexecParams' way: unnamed statement, parsed and
-- planned every time) beside it. Not -M simple: the order id read by the first statement (\gset) is
-- bound as a parameter in both other modes, as the service binds it; simple mode would paste it
-- unquoted.
-- Orders ord_bench_<n, 22 digits> for n in 1..orders come from bench/seed.sql. The status is set to
-- 'processing' every time so every CHECK holds however often an order is hit; provider_event_id is
-- random per transaction (and carries the client id), so runs never collide in the inbox.
\set n random(1, :orders)
\set evt random(1, 1000000000000000)
BEGIN;
-- lockOrder: the service's text, with its $1 (the provider's order reference) computed from :n.
SELECT id, merchant_order_id, amount, currency, provider, status, description, metadata::text, expires_at,
    created_at, updated_at FROM orders WHERE id = ('ord_bench_' || lpad(:n::text, 22, '0')) OR merchant_order_id = ('ord_bench_' || lpad(:n::text, 22, '0'))
ORDER BY (id = ('ord_bench_' || lpad(:n::text, 22, '0'))) DESC LIMIT 1 FOR UPDATE \gset order_
-- The inbox row, with a sandbox body of about 200 bytes as raw_body (built with json_build_object:
-- pgbench would take a colon inside a string literal for a variable).
INSERT INTO webhook_inbox (provider, provider_event_id, order_reference, order_id, event_type, outcome, raw_body)
VALUES ('sandbox', 'evt_bench_' || :evt::text || '_' || :client_id::text, :order_id, :order_id, 'payment.processing', 'applied',
    convert_to(json_build_object('id', 'evt_bench_' || :evt::text || '_' || :client_id::text, 'type', 'payment.processing',
        'order_id', :order_id::text, 'amount', 1999, 'currency', 'CNY', 'progress', NULL, 'stage', NULL)::text, 'UTF8'));
-- changeStatus: the status, then appendStatusEvent (its event built from the order row as it is now).
UPDATE orders SET status = 'processing', updated_at = greatest(now(), updated_at) WHERE id = :order_id;
INSERT INTO order_events (order_id, event, data)
SELECT id, 'status', jsonb_build_object(
    'order_id', id, 'status', status, 'previous', :order_status::text, 'amount', amount, 'currency', currency,
    'updated_at', updated_at)
FROM orders WHERE id = :order_id
RETURNING id \gset event_
COMMIT;
