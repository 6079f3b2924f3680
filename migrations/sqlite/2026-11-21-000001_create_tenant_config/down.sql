DROP TABLE tenant_config;
