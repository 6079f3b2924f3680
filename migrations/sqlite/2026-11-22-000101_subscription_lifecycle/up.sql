-- The rest of the subscription's life as last read from Stripe (SPEC §7).
ALTER TABLE tenant_config ADD COLUMN trial_end TIMESTAMP;
ALTER TABLE tenant_config ADD COLUMN seats INTEGER;
ALTER TABLE tenant_config ADD COLUMN pending_plan TEXT;
ALTER TABLE tenant_config ADD COLUMN pending_plan_at TIMESTAMP;
ALTER TABLE tenant_config ADD COLUMN subscription_schedule_id TEXT;
-- Stripe's time of the first failed payment of the current past_due spell;
-- the grace period counts from it. Cleared once no longer past_due.
ALTER TABLE tenant_config ADD COLUMN past_due_since TIMESTAMP;
-- When the tenant was first seen with a trial. Never cleared: one trial per
-- tenant, even after the subscription ends.
ALTER TABLE tenant_config ADD COLUMN trial_used_at TIMESTAMP;
-- Ordering fence for state read from Stripe (db/subscriptions.rs): a ticket
-- is drawn before each read, and a read is stored only if no read drawn
-- later has been stored already.
ALTER TABLE tenant_config ADD COLUMN state_ticket BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_config ADD COLUMN state_applied_ticket BIGINT NOT NULL DEFAULT 0;
-- Last `sync` of this tenant (bulk sync resumes with the least recent).
ALTER TABLE tenant_config ADD COLUMN stripe_synced_at TIMESTAMP;
