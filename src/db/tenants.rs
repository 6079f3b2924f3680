//! `tenant_config`: the tenant → Stripe customer map and a cache of Stripe's
//! subscription state. Every function takes the tenant explicitly.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::tenant_config;
use super::DbConnection;
use crate::domain::TenantId;

/// A `tenant_config` row as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenant_config)]
pub struct TenantRecord {
    pub tenant_id: String,
    pub stripe_customer_id: Option<String>,
    pub billing_email: Option<String>,
    pub billing_name: Option<String>,
    pub plan: String,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub subscription_price_id: Option<String>,
    pub current_period_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The tenant's row, if it has one. A tenant without a row is on the free plan.
pub fn find(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<TenantRecord>> {
    tenant_config::table
        .find(tenant.as_str())
        .select(TenantRecord::as_select())
        .first(conn)
        .optional()
}
