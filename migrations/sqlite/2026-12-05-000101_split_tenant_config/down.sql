-- Folds subscriptions and tenant_leases back into one tenant_config.
DROP INDEX tenant_config_sync_age;
ALTER TABLE tenant_config RENAME TO tenant_config_new;
CREATE TABLE tenant_config (
    tenant_id TEXT PRIMARY KEY NOT NULL
        CHECK (length(tenant_id) BETWEEN 1 AND 64),
    stripe_customer_id TEXT UNIQUE,
    billing_email TEXT,
    billing_name TEXT,
    plan TEXT NOT NULL DEFAULT 'free',
    subscription_id TEXT,
    subscription_status TEXT,
    subscription_price_id TEXT,
    current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    customer_claim_token TEXT,
    customer_claim_started_at TIMESTAMP,
    customer_lease_expires_at TIMESTAMP,
    profile_sync_pending BOOLEAN NOT NULL DEFAULT 0,
    subscription_state_at TIMESTAMP,
    trial_end TIMESTAMP,
    seats INTEGER,
    pending_plan TEXT,
    pending_plan_at TIMESTAMP,
    subscription_schedule_id TEXT,
    past_due_since TIMESTAMP,
    trial_used_at TIMESTAMP,
    state_ticket BIGINT NOT NULL DEFAULT 0,
    state_applied_ticket BIGINT NOT NULL DEFAULT 0,
    stripe_synced_at TIMESTAMP,
    subscription_lock_token TEXT,
    subscription_lock_expires_at TIMESTAMP,
    customer_claim_holder TEXT
);
INSERT INTO tenant_config (tenant_id, stripe_customer_id, billing_email, billing_name,
    plan, subscription_id, subscription_status, subscription_price_id,
    current_period_end, cancel_at_period_end, created_at, updated_at,
    customer_claim_token, customer_claim_started_at, customer_lease_expires_at,
    profile_sync_pending, subscription_state_at, trial_end, seats, pending_plan,
    pending_plan_at, subscription_schedule_id, past_due_since, trial_used_at,
    state_ticket, state_applied_ticket, stripe_synced_at, subscription_lock_token,
    subscription_lock_expires_at, customer_claim_holder)
SELECT t.tenant_id, t.stripe_customer_id, t.billing_email, t.billing_name,
    COALESCE(s.plan, 'free'), s.subscription_id, s.status, s.price_id,
    s.current_period_end, COALESCE(s.cancel_at_period_end, 0), t.created_at, t.updated_at,
    c.token, c.started_at, c.expires_at,
    t.profile_sync_pending, s.state_at, s.trial_end, s.seats, s.pending_plan,
    s.pending_plan_at, s.schedule_id, s.past_due_since, s.trial_used_at,
    COALESCE(s.state_ticket, 0), COALESCE(s.state_applied_ticket, 0), t.stripe_synced_at,
    l.token, l.expires_at, c.holder
FROM tenant_config_new t
LEFT JOIN subscriptions s ON s.tenant_id = t.tenant_id
LEFT JOIN tenant_leases c ON c.tenant_id = t.tenant_id AND c.kind = 'customer'
LEFT JOIN tenant_leases l ON l.tenant_id = t.tenant_id AND l.kind = 'subscription';
DROP TABLE tenant_leases;
DROP TABLE subscriptions;
DROP TABLE tenant_config_new;
CREATE INDEX tenant_config_claim_holder ON tenant_config (customer_claim_holder)
    WHERE customer_claim_holder IS NOT NULL;
CREATE INDEX tenant_config_sync_age ON tenant_config (stripe_synced_at, tenant_id)
    WHERE stripe_customer_id IS NOT NULL;
