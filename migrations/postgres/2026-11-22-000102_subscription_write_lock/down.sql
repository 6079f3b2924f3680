ALTER TABLE tenant_config
    DROP COLUMN subscription_lock_token,
    DROP COLUMN subscription_lock_expires_at;
