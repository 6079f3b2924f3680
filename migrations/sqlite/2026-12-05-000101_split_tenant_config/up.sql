-- tenant_config held six concerns in 30 columns. It keeps the tenant's Stripe
-- customer and billing profile; the mirror of Stripe's subscription (with its
-- ordering tickets) moves to `subscriptions`, and the customer-creation claim
-- and the subscription write lock to `tenant_leases`. Every row moves.
--
-- SQLite rebuilds the table: the old one is renamed, the new tables are
-- filled from it, then it is dropped (so no foreign key points at a table
-- being dropped).
DROP INDEX tenant_config_claim_holder;
DROP INDEX tenant_config_sync_age;
ALTER TABLE tenant_config RENAME TO tenant_config_old;

CREATE TABLE tenant_config (
    tenant_id TEXT PRIMARY KEY NOT NULL
        CHECK (length(tenant_id) BETWEEN 1 AND 64),
    stripe_customer_id TEXT UNIQUE,
    billing_email TEXT,
    billing_name TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    profile_sync_pending BOOLEAN NOT NULL DEFAULT 0,
    -- Last `sync` of this tenant (bulk sync resumes with the least recent).
    stripe_synced_at TIMESTAMP
);
INSERT INTO tenant_config (tenant_id, stripe_customer_id, billing_email, billing_name,
    created_at, updated_at, profile_sync_pending, stripe_synced_at)
SELECT tenant_id, stripe_customer_id, billing_email, billing_name,
    created_at, updated_at, profile_sync_pending, stripe_synced_at
FROM tenant_config_old;
CREATE INDEX tenant_config_sync_age ON tenant_config (stripe_synced_at, tenant_id)
    WHERE stripe_customer_id IS NOT NULL;

CREATE TABLE subscriptions (
    tenant_id TEXT PRIMARY KEY NOT NULL
        REFERENCES tenant_config (tenant_id) ON DELETE CASCADE,
    -- Our plan id for the subscription while it pays, else 'free'.
    plan TEXT NOT NULL DEFAULT 'free',
    subscription_id TEXT,
    status TEXT,
    price_id TEXT,
    current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT 0,
    trial_end TIMESTAMP,
    seats INTEGER,
    pending_plan TEXT,
    pending_plan_at TIMESTAMP,
    schedule_id TEXT,
    -- Stripe's time of the first failed payment of the current past_due
    -- spell; the grace period counts from it.
    past_due_since TIMESTAMP,
    -- Never cleared: one trial per tenant, even after the customer is gone.
    trial_used_at TIMESTAMP,
    -- Stripe's time of the newest event applied: older events never win.
    state_at TIMESTAMP,
    -- Ordering fence for reads of Stripe (db/subscriptions.rs).
    state_ticket BIGINT NOT NULL DEFAULT 0,
    state_applied_ticket BIGINT NOT NULL DEFAULT 0
);
INSERT INTO subscriptions (tenant_id, plan, subscription_id, status, price_id,
    current_period_end, cancel_at_period_end, trial_end, seats, pending_plan,
    pending_plan_at, schedule_id, past_due_since, trial_used_at, state_at,
    state_ticket, state_applied_ticket)
SELECT tenant_id, plan, subscription_id, subscription_status, subscription_price_id,
    current_period_end, cancel_at_period_end, trial_end, seats, pending_plan,
    pending_plan_at, subscription_schedule_id, past_due_since, trial_used_at,
    subscription_state_at, state_ticket, state_applied_ticket
FROM tenant_config_old
WHERE plan <> 'free' OR subscription_id IS NOT NULL OR subscription_status IS NOT NULL
    OR subscription_price_id IS NOT NULL OR current_period_end IS NOT NULL
    OR cancel_at_period_end OR trial_end IS NOT NULL OR seats IS NOT NULL
    OR pending_plan IS NOT NULL OR pending_plan_at IS NOT NULL
    OR subscription_schedule_id IS NOT NULL OR past_due_since IS NOT NULL
    OR trial_used_at IS NOT NULL OR subscription_state_at IS NOT NULL
    OR state_ticket <> 0 OR state_applied_ticket <> 0;

-- A lease per tenant and kind: 'customer' (the right to create the tenant's
-- Stripe customer; its token, and so the idempotency key, outlives a lapsed
-- lease) and 'subscription' (the subscription write lock).
CREATE TABLE tenant_leases (
    tenant_id TEXT NOT NULL
        REFERENCES tenant_config (tenant_id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('customer', 'subscription')),
    token TEXT NOT NULL,
    -- The service instance holding the lease; NULL once given back.
    holder TEXT,
    started_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    PRIMARY KEY (tenant_id, kind)
);
CREATE INDEX tenant_leases_holder ON tenant_leases (holder) WHERE holder IS NOT NULL;
INSERT INTO tenant_leases (tenant_id, kind, token, holder, started_at, expires_at)
SELECT tenant_id, 'customer', customer_claim_token, customer_claim_holder,
    COALESCE(customer_claim_started_at, updated_at), customer_lease_expires_at
FROM tenant_config_old
WHERE customer_claim_token IS NOT NULL AND stripe_customer_id IS NULL;
INSERT INTO tenant_leases (tenant_id, kind, token, holder, started_at, expires_at)
SELECT tenant_id, 'subscription', subscription_lock_token, NULL,
    CURRENT_TIMESTAMP, subscription_lock_expires_at
FROM tenant_config_old
WHERE subscription_lock_token IS NOT NULL;

DROP TABLE tenant_config_old;
