-- Folds subscriptions and tenant_leases back into tenant_config.
DROP TRIGGER subscriptions_notify_state_update ON subscriptions;
DROP TRIGGER subscriptions_notify_state ON subscriptions;
DROP TRIGGER tenant_config_notify_state_update ON tenant_config;
DROP TRIGGER tenant_config_notify_state ON tenant_config;

ALTER TABLE tenant_config
    ADD COLUMN plan TEXT NOT NULL DEFAULT 'free',
    ADD COLUMN subscription_id TEXT,
    ADD COLUMN subscription_status TEXT,
    ADD COLUMN subscription_price_id TEXT,
    ADD COLUMN current_period_end TIMESTAMP,
    ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN customer_claim_token TEXT,
    ADD COLUMN customer_claim_started_at TIMESTAMP,
    ADD COLUMN customer_lease_expires_at TIMESTAMP,
    ADD COLUMN subscription_state_at TIMESTAMP,
    ADD COLUMN trial_end TIMESTAMP,
    ADD COLUMN seats INTEGER,
    ADD COLUMN pending_plan TEXT,
    ADD COLUMN pending_plan_at TIMESTAMP,
    ADD COLUMN subscription_schedule_id TEXT,
    ADD COLUMN past_due_since TIMESTAMP,
    ADD COLUMN trial_used_at TIMESTAMP,
    ADD COLUMN state_ticket BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN state_applied_ticket BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN subscription_lock_token TEXT,
    ADD COLUMN subscription_lock_expires_at TIMESTAMP,
    ADD COLUMN customer_claim_holder TEXT;
CREATE INDEX tenant_config_claim_holder ON tenant_config (customer_claim_holder)
    WHERE customer_claim_holder IS NOT NULL;

UPDATE tenant_config t SET
    plan = s.plan, subscription_id = s.subscription_id,
    subscription_status = s.status, subscription_price_id = s.price_id,
    current_period_end = s.current_period_end,
    cancel_at_period_end = s.cancel_at_period_end, trial_end = s.trial_end,
    seats = s.seats, pending_plan = s.pending_plan,
    pending_plan_at = s.pending_plan_at, subscription_schedule_id = s.schedule_id,
    past_due_since = s.past_due_since, trial_used_at = s.trial_used_at,
    subscription_state_at = s.state_at, state_ticket = s.state_ticket,
    state_applied_ticket = s.state_applied_ticket
FROM subscriptions s WHERE s.tenant_id = t.tenant_id;

UPDATE tenant_config t SET
    customer_claim_token = l.token, customer_claim_started_at = l.started_at,
    customer_lease_expires_at = l.expires_at, customer_claim_holder = l.holder
FROM tenant_leases l WHERE l.tenant_id = t.tenant_id AND l.kind = 'customer';

UPDATE tenant_config t SET
    subscription_lock_token = l.token, subscription_lock_expires_at = l.expires_at
FROM tenant_leases l WHERE l.tenant_id = t.tenant_id AND l.kind = 'subscription';

DROP TABLE tenant_leases;
DROP TABLE subscriptions;

CREATE TRIGGER tenant_config_notify_state
    AFTER INSERT OR UPDATE OR DELETE ON tenant_config
    FOR EACH ROW EXECUTE FUNCTION tenant_billing_notify_state();
