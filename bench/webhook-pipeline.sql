-- pgbench script: the service's webhook transaction as it sends it (OrderStore.record through
-- Connection.transaction(opening:then:)), the ceiling bench/run.sh judges the service against.
-- bench/webhook.sql's statements, with those that follow the order's lock sent together in one
-- pipeline (libpq's pipeline mode, PostgreSQL 14+): the inbox insert, the update, the event insert
-- and COMMIT in one round trip. The service sends BEGIN in the same pipeline as the lock, two round
-- trips in all; pgbench needs three, because the lock's \gset (which the statements after it read)
-- is not allowed inside a pipeline. The event insert's \gset is gone too (nothing reads it).
--
--   pgbench -n -M prepared -f bench/webhook-pipeline.sql -D orders=2000 -c 32 -j 2 -T 15 URL
--
\set n random(1, :orders)
\set evt random(1, 1000000000000000)
BEGIN;
-- lockOrder: the service's text, with its $1 (the provider's order reference) computed from :n.
SELECT id, merchant_order_id, amount, currency, provider, status, description, metadata::text, expires_at,
    created_at, updated_at FROM orders WHERE id = ('ord_bench_' || lpad(:n::text, 22, '0')) OR merchant_order_id = ('ord_bench_' || lpad(:n::text, 22, '0'))
ORDER BY (id = ('ord_bench_' || lpad(:n::text, 22, '0'))) DESC LIMIT 1 FOR UPDATE \gset order_
\startpipeline
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
RETURNING id;
COMMIT;
\endpipeline
