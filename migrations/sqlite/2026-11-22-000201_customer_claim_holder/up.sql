-- Which service instance holds a tenant's creation lease, so that a stopping
-- instance (SIGTERM) can give back every lease it holds in one statement and a
-- successor takes over at once; the claim's token (and so the Stripe
-- idempotency key) is kept.
ALTER TABLE tenant_config ADD COLUMN customer_claim_holder TEXT;
CREATE INDEX tenant_config_claim_holder ON tenant_config (customer_claim_holder)
    WHERE customer_claim_holder IS NOT NULL;
