// Shared by both backends: only plain SQL types (text, bool, timestamps in UTC).
// Regenerate with `just schema` (diesel print-schema against PostgreSQL).

diesel::table! {
    tenant_config (tenant_id) {
        tenant_id -> Text,
        stripe_customer_id -> Nullable<Text>,
        billing_email -> Nullable<Text>,
        billing_name -> Nullable<Text>,
        plan -> Text,
        subscription_id -> Nullable<Text>,
        subscription_status -> Nullable<Text>,
        subscription_price_id -> Nullable<Text>,
        current_period_end -> Nullable<Timestamp>,
        cancel_at_period_end -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        customer_claim_token -> Nullable<Text>,
        customer_claim_started_at -> Nullable<Timestamp>,
        customer_lease_expires_at -> Nullable<Timestamp>,
        profile_sync_pending -> Bool,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        tenant_id -> Text,
        actor -> Text,
        request_id -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    jobs (id) {
        id -> BigInt,
        kind -> Text,
        tenant_id -> Text,
        state -> Text,
        attempts -> Integer,
        run_again -> Bool,
        run_after -> Timestamp,
        queued_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
