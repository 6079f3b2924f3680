-- One row per tenant; at most one Stripe customer per tenant and per customer.
CREATE TABLE tenant_config (
    tenant_id TEXT PRIMARY KEY NOT NULL
        CHECK (length(tenant_id) BETWEEN 1 AND 64),
    stripe_customer_id TEXT UNIQUE,
    billing_email TEXT,
    billing_name TEXT,
    plan TEXT NOT NULL DEFAULT 'free',
    subscription_id TEXT,
    subscription_status TEXT,
    subscription_price_id TEXT,
    current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
