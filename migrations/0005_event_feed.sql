-- The merchant event stream (GET /v1/events) reads every order's events in one order that never
-- changes once read: by the id of the transaction that inserted them, then by event id. It reads
-- an event only once that transaction id is below the oldest one still running
-- (pg_snapshot_xmin of the current snapshot): every transaction below it has ended, so nothing can
-- appear later in front of what was read. Ordering by event id alone would skip an event whose
-- transaction drew its id first and committed last.
--
-- Existing rows all take this migration's transaction id (a one-time rewrite of the table); they
-- keep their order among themselves by event id.
ALTER TABLE order_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX order_events_feed ON order_events (xid, id);
