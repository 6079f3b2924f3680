-- Every change to a tenant's row notifies the other service instances, which
-- drop that tenant's cached billing state. A trigger runs inside the writing
-- transaction, so the notification is delivered only if it commits, and no
-- writer (service, operator command, a later feature) can forget it.
CREATE FUNCTION tenant_billing_notify_state() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tenant_billing_state', COALESCE(NEW.tenant_id, OLD.tenant_id));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenant_config_notify_state
    AFTER INSERT OR UPDATE OR DELETE ON tenant_config
    FOR EACH ROW EXECUTE FUNCTION tenant_billing_notify_state();
