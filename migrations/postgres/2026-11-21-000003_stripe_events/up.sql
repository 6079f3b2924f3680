-- The webhook ledger: one row per Stripe event id, written in the same
-- transaction as the event's effect, so a redelivery changes nothing.
CREATE TABLE stripe_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    stripe_created_at TIMESTAMP NOT NULL,
    tenant_id VARCHAR(64),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    last_error TEXT,
    payload TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP
);
CREATE INDEX stripe_events_status ON stripe_events (status);

-- Watermark: the Stripe time of the newest event applied to the tenant's
-- subscription state; older events never overwrite newer state.
ALTER TABLE tenant_config ADD COLUMN subscription_state_at TIMESTAMP;
