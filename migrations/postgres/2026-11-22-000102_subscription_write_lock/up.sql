-- Serialises a tenant's subscription writes (plan change, cancel, resume and,
-- later, seats) across instances: a token and a lease set by compare-and-set
-- in a short transaction, never a transaction held across the Stripe call.
ALTER TABLE tenant_config
    ADD COLUMN subscription_lock_token TEXT,
    ADD COLUMN subscription_lock_expires_at TIMESTAMP;
