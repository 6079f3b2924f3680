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
        subscription_state_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    stripe_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        stripe_created_at -> Timestamp,
        tenant_id -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        payload -> Text,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
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
