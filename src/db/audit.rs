//! The audit log: who did what to a tenant's billing, and how it ended.
//! Append-only; written in the same transaction as the change where there is one.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_log;
use super::DbConnection;
use crate::domain::TenantId;

/// One audit entry. `detail` is JSON text and never holds secrets.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub tenant: &'a TenantId,
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub detail: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    tenant_id: &'a str,
    actor: &'a str,
    request_id: Option<&'a str>,
    action: &'a str,
    outcome: &'a str,
    detail: Option<&'a str>,
    created_at: NaiveDateTime,
}

/// A stored audit entry, for operators and tests.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRecord {
    pub id: i64,
    pub tenant_id: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn append(conn: &mut DbConnection, entry: &AuditEntry<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(NewAuditRow {
            tenant_id: entry.tenant.as_str(),
            actor: entry.actor,
            request_id: entry.request_id,
            action: entry.action,
            outcome: entry.outcome,
            detail: entry.detail.as_deref(),
            created_at: chrono::Utc::now().naive_utc(),
        })
        .execute(conn)?;
    Ok(())
}

/// The tenant's entries, oldest first.
pub fn for_tenant(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Vec<AuditRecord>> {
    audit_log::table
        .filter(audit_log::tenant_id.eq(tenant.as_str()))
        .order(audit_log::id.asc())
        .select(AuditRecord::as_select())
        .load(conn)
}
