-- `sync --all` walks the linked tenants by sync age in keyset pages
-- (never-synced first, then least recently synced); this keeps each page an
-- index range scan on a table of any size.
CREATE INDEX tenant_config_sync_age ON tenant_config (stripe_synced_at, tenant_id)
    WHERE stripe_customer_id IS NOT NULL;
