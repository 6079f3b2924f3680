DROP INDEX tenant_config_sync_age;
