-- Usage metering. Usage periods follow the subscription's current period,
-- so the mirror keeps its start as well as its end.
ALTER TABLE subscriptions ADD COLUMN current_period_start TIMESTAMP;

-- The append-only ledger: one row per accepted event, written in the same
-- transaction as the period total it adds to, before the answer. A key is
-- counted once per tenant, whatever its timestamp or the instance it reached.
CREATE TABLE usage_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    meter TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity >= 1),
    -- What the event added to its period's total (the quantity, or 1 for a
    -- counting meter).
    value BIGINT NOT NULL,
    -- The event's own time: it decides the period (and Stripe's, when billed).
    occurred_at TIMESTAMP NOT NULL,
    period_start TIMESTAMP NOT NULL,
    -- The answer given, replayed to a retry: the total after this event and
    -- the limit then in force.
    used_after BIGINT NOT NULL,
    usage_limit BIGINT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX usage_events_key ON usage_events (tenant_id, idempotency_key);
CREATE INDEX usage_events_recorded ON usage_events (recorded_at);

-- Period totals, updated in the same transaction as the ledger: reads and
-- limit checks never scan the ledger. The row's lock serialises the events
-- of one tenant, meter and period across instances.
CREATE TABLE usage_counters (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    period_start TIMESTAMP NOT NULL,
    period_end TIMESTAMP NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, meter, period_start)
);
