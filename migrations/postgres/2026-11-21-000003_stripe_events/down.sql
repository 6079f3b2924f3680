ALTER TABLE tenant_config DROP COLUMN subscription_state_at;
DROP TABLE stripe_events;
