DROP TRIGGER tenant_config_notify_state_update ON tenant_config;
CREATE TRIGGER tenant_config_notify_state_update
    AFTER UPDATE ON tenant_config
    FOR EACH ROW
    WHEN ((OLD.stripe_customer_id, OLD.billing_email, OLD.billing_name)
        IS DISTINCT FROM (NEW.stripe_customer_id, NEW.billing_email, NEW.billing_name))
    EXECUTE FUNCTION tenant_billing_notify_state();

ALTER TABLE tenant_config
    DROP COLUMN address_line1,
    DROP COLUMN address_line2,
    DROP COLUMN address_city,
    DROP COLUMN address_postal_code,
    DROP COLUMN address_state,
    DROP COLUMN address_country,
    DROP COLUMN currency;
