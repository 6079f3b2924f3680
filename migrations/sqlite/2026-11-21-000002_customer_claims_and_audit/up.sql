-- The creation claim: a token that names one "create this tenant's customer"
-- intent (the Stripe idempotency key derives from it) and a lease on it.
ALTER TABLE tenant_config ADD COLUMN customer_claim_token TEXT;
ALTER TABLE tenant_config ADD COLUMN customer_claim_started_at TIMESTAMP;
ALTER TABLE tenant_config ADD COLUMN customer_lease_expires_at TIMESTAMP;
ALTER TABLE tenant_config ADD COLUMN profile_sync_pending BOOLEAN NOT NULL DEFAULT 0;

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX audit_log_tenant_created ON audit_log (tenant_id, created_at);
