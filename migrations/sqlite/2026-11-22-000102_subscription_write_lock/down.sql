ALTER TABLE tenant_config DROP COLUMN subscription_lock_token;
ALTER TABLE tenant_config DROP COLUMN subscription_lock_expires_at;
