DROP INDEX tenant_config_claim_holder;
ALTER TABLE tenant_config DROP COLUMN customer_claim_holder;
