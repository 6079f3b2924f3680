-- Usage to Stripe (issue 20). The ledger is cut, in id order, into batches;
-- each batch is one Stripe meter event whose identifier names its ledger
-- range, written here before it is sent, so a retry sends the same one.

-- Per tenant and Stripe-billed meter: how far the ledger has been cut, and
-- when the last meter event was attempted (at most one per interval).
CREATE TABLE usage_forwarding (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The highest ledger id already in a batch.
    batched_through BIGINT NOT NULL DEFAULT 0,
    last_attempt_at TIMESTAMP,
    -- Stripe's 429s in a row: the next attempt waits longer.
    throttled INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, meter)
);

CREATE TABLE usage_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- `forward` (a ledger range) or `fix` (reconcile --usage --fix).
    kind TEXT NOT NULL,
    -- The ledger range (ids of this tenant and meter); NULL for a fix.
    first_event_id BIGINT,
    last_event_id BIGINT,
    -- The ledger's period the batch belongs to.
    period_start TIMESTAMP NOT NULL,
    period_end TIMESTAMP NOT NULL,
    -- What it adds to the meter (a fix may be negative) and how many events.
    value BIGINT NOT NULL,
    events BIGINT NOT NULL,
    -- The meter event's timestamp: its latest event's, kept inside the period.
    occurred_at TIMESTAMP NOT NULL,
    -- When its oldest event was recorded (forwarding lag).
    oldest_recorded_at TIMESTAMP NOT NULL,
    identifier TEXT NOT NULL,
    -- pending | sent | expired | rejected | unknown | superseded
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at TIMESTAMP,
    sent_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX usage_batches_identifier ON usage_batches (identifier);
CREATE INDEX usage_batches_pending ON usage_batches (tenant_id, meter, id) WHERE state = 'pending';
CREATE INDEX usage_batches_lag ON usage_batches (oldest_recorded_at) WHERE state = 'pending';
CREATE INDEX usage_batches_period ON usage_batches (tenant_id, meter, period_start);

-- The events of a tenant and meter past its cut, in id order.
CREATE INDEX usage_events_forward ON usage_events (tenant_id, meter, id);
