-- The rest of the subscription's life as last read from Stripe (SPEC §7).
ALTER TABLE tenant_config
    ADD COLUMN trial_end TIMESTAMP,
    ADD COLUMN seats INTEGER,
    ADD COLUMN pending_plan TEXT,
    ADD COLUMN pending_plan_at TIMESTAMP,
    ADD COLUMN subscription_schedule_id TEXT,
    -- Stripe's time of the first failed payment of the current past_due
    -- spell; the grace period counts from it. Cleared once no longer past_due.
    ADD COLUMN past_due_since TIMESTAMP,
    -- When the tenant was first seen with a trial. Never cleared: one trial
    -- per tenant, even after the subscription ends.
    ADD COLUMN trial_used_at TIMESTAMP,
    -- Ordering fence for state read from Stripe (db/subscriptions.rs): a
    -- ticket is drawn before each read, and a read is stored only if no read
    -- drawn later has been stored already.
    ADD COLUMN state_ticket BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN state_applied_ticket BIGINT NOT NULL DEFAULT 0,
    -- Last `sync` of this tenant (bulk sync resumes with the least recent).
    ADD COLUMN stripe_synced_at TIMESTAMP;
