-- Issue 21: the billing address (the tenant's tax location, synced to its
-- Stripe customer like the name and email) and the currency the tenant pays
-- in, fixed by its first paid subscription (Stripe keeps one currency per
-- customer). Both belong to the profile, so to tenant_config.
ALTER TABLE tenant_config ADD COLUMN address_line1 TEXT;
ALTER TABLE tenant_config ADD COLUMN address_line2 TEXT;
ALTER TABLE tenant_config ADD COLUMN address_city TEXT;
ALTER TABLE tenant_config ADD COLUMN address_postal_code TEXT;
ALTER TABLE tenant_config ADD COLUMN address_state TEXT;
-- ISO 3166-1 alpha-2, upper case.
ALTER TABLE tenant_config ADD COLUMN address_country TEXT;
-- ISO 4217, lower case as Stripe writes it; NULL until a subscription in some
-- currency was read from Stripe.
ALTER TABLE tenant_config ADD COLUMN currency TEXT;
