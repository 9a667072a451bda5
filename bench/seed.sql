-- The orders bench/webhook*.sql pick from: ord_bench_<n as 22 digits> for n in 1..:orders (psql -v
-- orders=N), sandbox, 1999 CNY, expiring in ten years, each with the first `status` event the service
-- appends when it creates an order. Idempotent: orders that exist are left as they are.
--
--   psql -v ON_ERROR_STOP=1 -v orders=2000 -f bench/seed.sql URL
WITH new_orders AS (
    INSERT INTO orders (id, amount, currency, provider, expires_at)
    SELECT 'ord_bench_' || lpad(n::text, 22, '0'), 1999, 'CNY', 'sandbox', now() + interval '10 years'
    FROM generate_series(1, :orders) AS n
    ON CONFLICT DO NOTHING
    RETURNING id, status, amount, currency, updated_at
)
INSERT INTO order_events (order_id, event, data)
SELECT id, 'status', jsonb_build_object(
    'order_id', id, 'status', status, 'previous', NULL::text, 'amount', amount, 'currency', currency,
    'updated_at', updated_at)
FROM new_orders ORDER BY id;

VACUUM (ANALYZE) orders, order_events;
