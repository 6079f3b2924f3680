DROP TABLE audit_log;
ALTER TABLE tenant_config
    DROP COLUMN customer_claim_token,
    DROP COLUMN customer_claim_started_at,
    DROP COLUMN customer_lease_expires_at,
    DROP COLUMN profile_sync_pending;
