-- An Idempotency-Key may come with POST /v1/orders/{id}/events too: the same key with the same
-- request returns the event it appended instead of appending another. One namespace for both
-- kinds of request: a key an order was created with is refused on an event, and the other way.
ALTER TABLE idempotency_keys ADD COLUMN event_id bigint REFERENCES order_events (id);
