DROP TRIGGER tenant_config_notify_state ON tenant_config;
DROP FUNCTION tenant_billing_notify_state();
