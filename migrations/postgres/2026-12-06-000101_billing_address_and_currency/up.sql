-- Issue 21: the billing address (the tenant's tax location, synced to its
-- Stripe customer like the name and email) and the currency the tenant pays
-- in, fixed by its first paid subscription (Stripe keeps one currency per
-- customer). Both belong to the profile, so to tenant_config.
ALTER TABLE tenant_config
    ADD COLUMN address_line1 TEXT,
    ADD COLUMN address_line2 TEXT,
    ADD COLUMN address_city TEXT,
    ADD COLUMN address_postal_code TEXT,
    ADD COLUMN address_state TEXT,
    -- ISO 3166-1 alpha-2, upper case.
    ADD COLUMN address_country TEXT,
    -- ISO 4217, lower case as Stripe writes it; NULL until a subscription
    -- in some currency was read from Stripe.
    ADD COLUMN currency TEXT;

-- Readers of the billing state see the address and the currency too.
DROP TRIGGER tenant_config_notify_state_update ON tenant_config;
CREATE TRIGGER tenant_config_notify_state_update
    AFTER UPDATE ON tenant_config
    FOR EACH ROW
    WHEN ((OLD.stripe_customer_id, OLD.billing_email, OLD.billing_name,
           OLD.address_line1, OLD.address_line2, OLD.address_city,
           OLD.address_postal_code, OLD.address_state, OLD.address_country, OLD.currency)
        IS DISTINCT FROM
          (NEW.stripe_customer_id, NEW.billing_email, NEW.billing_name,
           NEW.address_line1, NEW.address_line2, NEW.address_city,
           NEW.address_postal_code, NEW.address_state, NEW.address_country, NEW.currency))
    EXECUTE FUNCTION tenant_billing_notify_state();
