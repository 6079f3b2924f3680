DROP TABLE audit_log;
ALTER TABLE tenant_config DROP COLUMN customer_claim_token;
ALTER TABLE tenant_config DROP COLUMN customer_claim_started_at;
ALTER TABLE tenant_config DROP COLUMN customer_lease_expires_at;
ALTER TABLE tenant_config DROP COLUMN profile_sync_pending;
