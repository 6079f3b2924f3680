-- One row per tenant; at most one Stripe customer per tenant and per customer.
CREATE TABLE tenant_config (
    tenant_id VARCHAR(64) PRIMARY KEY
        CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    stripe_customer_id TEXT UNIQUE,
    billing_email TEXT,
    billing_name TEXT,
    plan TEXT NOT NULL DEFAULT 'free',
    subscription_id TEXT,
    subscription_status TEXT,
    subscription_price_id TEXT,
    current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
