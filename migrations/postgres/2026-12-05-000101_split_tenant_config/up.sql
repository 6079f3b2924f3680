-- tenant_config held six concerns in 30 columns. It keeps the tenant's Stripe
-- customer and billing profile; the mirror of Stripe's subscription (with its
-- ordering tickets) moves to `subscriptions`, and the customer-creation claim
-- and the subscription write lock to `tenant_leases`. Every row moves.

CREATE TABLE subscriptions (
    tenant_id VARCHAR(64) PRIMARY KEY
        REFERENCES tenant_config (tenant_id) ON DELETE CASCADE,
    -- Our plan id for the subscription while it pays, else 'free'.
    plan TEXT NOT NULL DEFAULT 'free',
    subscription_id TEXT,
    status TEXT,
    price_id TEXT,
    current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
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
FROM tenant_config
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
    tenant_id VARCHAR(64) NOT NULL
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
FROM tenant_config
WHERE customer_claim_token IS NOT NULL AND stripe_customer_id IS NULL;

INSERT INTO tenant_leases (tenant_id, kind, token, holder, started_at, expires_at)
SELECT tenant_id, 'subscription', subscription_lock_token, NULL,
    now() AT TIME ZONE 'utc', subscription_lock_expires_at
FROM tenant_config
WHERE subscription_lock_token IS NOT NULL;

DROP INDEX tenant_config_claim_holder;
ALTER TABLE tenant_config
    DROP COLUMN plan,
    DROP COLUMN subscription_id,
    DROP COLUMN subscription_status,
    DROP COLUMN subscription_price_id,
    DROP COLUMN current_period_end,
    DROP COLUMN cancel_at_period_end,
    DROP COLUMN customer_claim_token,
    DROP COLUMN customer_claim_started_at,
    DROP COLUMN customer_lease_expires_at,
    DROP COLUMN subscription_state_at,
    DROP COLUMN trial_end,
    DROP COLUMN seats,
    DROP COLUMN pending_plan,
    DROP COLUMN pending_plan_at,
    DROP COLUMN subscription_schedule_id,
    DROP COLUMN past_due_since,
    DROP COLUMN trial_used_at,
    DROP COLUMN state_ticket,
    DROP COLUMN state_applied_ticket,
    DROP COLUMN subscription_lock_token,
    DROP COLUMN subscription_lock_expires_at,
    DROP COLUMN customer_claim_holder;

-- Notify other instances only when what a reader of the billing state sees
-- changes: not on a ticket drawn, a row locked for ordering, a sync stamp or
-- a lease (leases have their own table and no trigger).
DROP TRIGGER tenant_config_notify_state ON tenant_config;
CREATE TRIGGER tenant_config_notify_state
    AFTER INSERT OR DELETE ON tenant_config
    FOR EACH ROW EXECUTE FUNCTION tenant_billing_notify_state();
CREATE TRIGGER tenant_config_notify_state_update
    AFTER UPDATE ON tenant_config
    FOR EACH ROW
    WHEN ((OLD.stripe_customer_id, OLD.billing_email, OLD.billing_name)
        IS DISTINCT FROM (NEW.stripe_customer_id, NEW.billing_email, NEW.billing_name))
    EXECUTE FUNCTION tenant_billing_notify_state();
CREATE TRIGGER subscriptions_notify_state
    AFTER INSERT OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION tenant_billing_notify_state();
CREATE TRIGGER subscriptions_notify_state_update
    AFTER UPDATE ON subscriptions
    FOR EACH ROW
    WHEN ((OLD.plan, OLD.subscription_id, OLD.status, OLD.current_period_end,
           OLD.cancel_at_period_end, OLD.trial_end, OLD.seats, OLD.pending_plan,
           OLD.pending_plan_at, OLD.past_due_since, OLD.trial_used_at)
        IS DISTINCT FROM
          (NEW.plan, NEW.subscription_id, NEW.status, NEW.current_period_end,
           NEW.cancel_at_period_end, NEW.trial_end, NEW.seats, NEW.pending_plan,
           NEW.pending_plan_at, NEW.past_due_since, NEW.trial_used_at))
    EXECUTE FUNCTION tenant_billing_notify_state();
