ALTER TABLE tenant_config DROP COLUMN address_line1;
ALTER TABLE tenant_config DROP COLUMN address_line2;
ALTER TABLE tenant_config DROP COLUMN address_city;
ALTER TABLE tenant_config DROP COLUMN address_postal_code;
ALTER TABLE tenant_config DROP COLUMN address_state;
ALTER TABLE tenant_config DROP COLUMN address_country;
ALTER TABLE tenant_config DROP COLUMN currency;
