//! `tenant_config`: the tenant → Stripe customer map and the billing profile,
//! one row per tenant. The subscription mirror lives in `subscriptions`
//! (db/subscriptions.rs) and the creation claim and write lock in
//! `tenant_leases` (db/leases.rs). Every function takes the tenant explicitly.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{subscriptions, tenant_config};
use super::subscriptions::SubscriptionRecord;
use super::DbConnection;
use crate::domain::TenantId;

/// A tenant as stored: its `tenant_config` row with its subscription mirror
/// (a default, free one when it never had a subscription).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenant_config)]
pub struct TenantRecord {
    pub tenant_id: String,
    pub stripe_customer_id: Option<String>,
    pub billing_email: Option<String>,
    pub billing_name: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub profile_sync_pending: bool,
    pub stripe_synced_at: Option<NaiveDateTime>,
    #[diesel(embed)]
    pub address: AddressColumns,
    /// The currency the tenant pays in, once a subscription fixed it.
    pub currency: Option<String>,
    #[diesel(embed)]
    subscription_row: Option<SubscriptionRecord>,
}

/// The billing address as stored (checked before it is written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Queryable, Selectable)]
#[diesel(table_name = tenant_config)]
pub struct AddressColumns {
    #[diesel(column_name = address_line1)]
    pub line1: Option<String>,
    #[diesel(column_name = address_line2)]
    pub line2: Option<String>,
    #[diesel(column_name = address_city)]
    pub city: Option<String>,
    #[diesel(column_name = address_postal_code)]
    pub postal_code: Option<String>,
    #[diesel(column_name = address_state)]
    pub state: Option<String>,
    #[diesel(column_name = address_country)]
    pub country: Option<String>,
}

impl TenantRecord {
    /// The tenant's subscription as last read from Stripe; free when none was.
    pub fn subscription(&self) -> &SubscriptionRecord {
        self.subscription_row
            .as_ref()
            .unwrap_or_else(|| SubscriptionRecord::none())
    }
}

/// The tenant's row, if it has one. A tenant without a row is on the free plan.
///
/// The hottest query: run on the concrete connection, where diesel caches the
/// prepared statement by type instead of re-serialising the SQL per call as
/// it must through the multi-backend enum.
pub fn find(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<TenantRecord>> {
    let query = tenant_config::table
        .left_join(subscriptions::table)
        .filter(tenant_config::tenant_id.eq(tenant.as_str()));
    match conn {
        DbConnection::Postgresql(c) => query.select(TenantRecord::as_select()).first(c).optional(),
        DbConnection::Sqlite(c) => query.select(TenantRecord::as_select()).first(c).optional(),
    }
}

/// The rows of several tenants in one query (`tenant_id = ANY($1)` on
/// PostgreSQL, one prepared statement whatever the count): the display read
/// batches concurrent cache misses through it. Each caller gets back only the
/// row of the tenant its own verified token named.
pub fn find_many(conn: &mut DbConnection, tenants: &[&str]) -> QueryResult<Vec<TenantRecord>> {
    let query = tenant_config::table
        .left_join(subscriptions::table)
        .filter(tenant_config::tenant_id.eq_any(tenants));
    match conn {
        DbConnection::Postgresql(c) => query.select(TenantRecord::as_select()).load(c),
        DbConnection::Sqlite(c) => query.select(TenantRecord::as_select()).load(c),
    }
}

/// How recording a created customer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// This call linked the customer.
    Recorded,
    /// The tenant was already linked (to the returned id): nothing written.
    AlreadyLinked(String),
}

/// Links `customer_id` to the tenant only if it has no customer yet, and
/// ends the creation claim. Runs `also` in the same transaction (the audit
/// entry).
pub fn record_customer(
    conn: &mut DbConnection,
    tenant: &TenantId,
    customer_id: &str,
    now: NaiveDateTime,
    also: impl FnOnce(&mut DbConnection, &RecordOutcome) -> QueryResult<()>,
) -> Result<RecordOutcome, diesel::result::Error> {
    use tenant_config::dsl as t;
    conn.transaction(|c| {
        let updated = diesel::update(t::tenant_config)
            .filter(
                t::tenant_id
                    .eq(tenant.as_str())
                    .and(t::stripe_customer_id.is_null()),
            )
            .set((t::stripe_customer_id.eq(customer_id), t::updated_at.eq(now)))
            .execute(c)?;
        let outcome = if updated == 1 {
            super::leases::end_customer_claim(c, tenant)?;
            RecordOutcome::Recorded
        } else {
            let existing = t::tenant_config
                .find(tenant.as_str())
                .select(t::stripe_customer_id)
                .first::<Option<String>>(c)?;
            match existing {
                Some(id) => RecordOutcome::AlreadyLinked(id),
                // The row exists (claims create it) but another id won the race
                // and was cleared since: impossible today; report it as linked.
                None => RecordOutcome::AlreadyLinked(customer_id.to_owned()),
            }
        };
        also(c, &outcome)?;
        Ok(outcome)
    })
}

/// Inserts the tenant's row with `email`/`name` unless it exists; true if inserted.
fn insert_if_missing(
    conn: &mut DbConnection,
    tenant: &TenantId,
    email: Option<&str>,
    name: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use tenant_config::dsl as t;
    let values = (
        t::tenant_id.eq(tenant.as_str()),
        t::billing_email.eq(email),
        t::billing_name.eq(name),
        t::created_at.eq(now),
        t::updated_at.eq(now),
    );
    Ok(insert_or_ignore!(conn, t::tenant_config, values)? == 1)
}

/// Sets the billing profile, creating the row if missing, and runs `also` in
/// the same transaction (audit, outbox). Returns the row and whether this call
/// created it. The first statement writes, so SQLite takes its write lock
/// before reading anything.
/// `address`: `None` leaves the stored address as it is.
pub fn upsert_profile(
    conn: &mut DbConnection,
    tenant: &TenantId,
    email: &str,
    name: Option<&str>,
    address: Option<&AddressColumns>,
    now: NaiveDateTime,
    also: impl FnOnce(&mut DbConnection, &TenantRecord, bool) -> QueryResult<()>,
) -> Result<(TenantRecord, bool), diesel::result::Error> {
    use tenant_config::dsl as t;
    conn.transaction(|c| {
        let created = insert_if_missing(c, tenant, Some(email), name, now)?;
        if !created {
            diesel::update(t::tenant_config.find(tenant.as_str()))
                .set((
                    t::billing_email.eq(email),
                    t::billing_name.eq(name),
                    t::updated_at.eq(now),
                ))
                .execute(c)?;
        }
        if let Some(a) = address {
            diesel::update(t::tenant_config.find(tenant.as_str()))
                .set((
                    t::address_line1.eq(a.line1.as_deref()),
                    t::address_line2.eq(a.line2.as_deref()),
                    t::address_city.eq(a.city.as_deref()),
                    t::address_postal_code.eq(a.postal_code.as_deref()),
                    t::address_state.eq(a.state.as_deref()),
                    t::address_country.eq(a.country.as_deref()),
                ))
                .execute(c)?;
        }
        let row = find(c, tenant)?.ok_or(diesel::result::Error::NotFound)?;
        also(c, &row, created)?;
        Ok((row, created))
    })
}

/// Clears `profile_sync_pending` only if the row is still at `version`
/// (`updated_at` when the pushed profile was read); false means the profile
/// changed meanwhile and must be pushed again.
pub fn clear_profile_sync_pending(
    conn: &mut DbConnection,
    tenant: &TenantId,
    version: NaiveDateTime,
) -> QueryResult<bool> {
    use tenant_config::dsl as t;
    let cleared = diesel::update(
        t::tenant_config.filter(
            t::tenant_id
                .eq(tenant.as_str())
                .and(t::updated_at.eq(version)),
        ),
    )
    .set(t::profile_sync_pending.eq(false))
    .execute(conn)?;
    Ok(cleared == 1)
}

/// Every tenant row, in tenant order (operator commands: backfill, reconcile).
/// `unlinked_only` keeps the tenants without a Stripe customer.
pub fn list_all(conn: &mut DbConnection, unlinked_only: bool) -> QueryResult<Vec<TenantRecord>> {
    use tenant_config::dsl as t;
    let mut query = t::tenant_config
        .left_join(subscriptions::table)
        .into_boxed();
    if unlinked_only {
        query = query.filter(t::stripe_customer_id.is_null());
    }
    query
        .order(t::tenant_id.asc())
        .select(TenantRecord::as_select())
        .load(conn)
}

/// Which tenants a bulk command walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Rows without a Stripe customer (`backfill-customers`), in tenant order.
    Unlinked,
    /// Rows with a Stripe customer, in tenant order.
    Linked,
    /// Every row, in tenant order.
    All,
    /// Linked rows not synced since `before` (`sync --all`, which passes its
    /// own start): never-synced first in tenant order, then least recently
    /// synced. A row the run syncs leaves the selection, so the walk ends,
    /// and a run cut short and started again begins with the rows it did
    /// not reach.
    SyncDue { before: NaiveDateTime },
}

/// A row's place in a bulk walk: its id, and its sync age when the walk is
/// by sync age (`Selection::SyncDue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkKey {
    pub tenant_id: String,
    pub synced_at: Option<NaiveDateTime>,
}

/// Up to `limit` rows of `selection` after `after`, in the selection's
/// order: keyset pagination, so a bulk command streams any number of rows in
/// constant memory and each page is an index range scan (the primary key;
/// `tenant_config_sync_age` for `SyncDue`).
pub fn page(
    conn: &mut DbConnection,
    selection: Selection,
    after: Option<&WalkKey>,
    limit: i64,
) -> QueryResult<Vec<WalkKey>> {
    use tenant_config::dsl as t;
    let by_id = |ids: Vec<String>| {
        ids.into_iter()
            .map(|tenant_id| WalkKey {
                tenant_id,
                synced_at: None,
            })
            .collect()
    };
    let mut query = t::tenant_config.select(t::tenant_id).into_boxed();
    query = match selection {
        Selection::Unlinked => query.filter(t::stripe_customer_id.is_null()),
        Selection::Linked => query.filter(t::stripe_customer_id.is_not_null()),
        Selection::All => query,
        Selection::SyncDue { before } => return sync_due_page(conn, before, after, limit),
    };
    if let Some(after) = after {
        query = query.filter(t::tenant_id.gt(after.tenant_id.clone()));
    }
    query
        .order(t::tenant_id.asc())
        .limit(limit)
        .load(conn)
        .map(by_id)
}

/// `page` for `Selection::SyncDue`: the never-synced rows, then the synced
/// ones by `(stripe_synced_at, tenant_id)`.
fn sync_due_page(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    after: Option<&WalkKey>,
    limit: i64,
) -> QueryResult<Vec<WalkKey>> {
    use tenant_config::dsl as t;
    let mut keys = Vec::new();
    let in_second_part = after.is_some_and(|key| key.synced_at.is_some());
    if !in_second_part {
        let mut never = t::tenant_config
            .select(t::tenant_id)
            .filter(t::stripe_customer_id.is_not_null())
            .filter(t::stripe_synced_at.is_null())
            .into_boxed();
        if let Some(after) = after {
            never = never.filter(t::tenant_id.gt(after.tenant_id.clone()));
        }
        let ids: Vec<String> = never.order(t::tenant_id.asc()).limit(limit).load(conn)?;
        keys.extend(ids.into_iter().map(|tenant_id| WalkKey {
            tenant_id,
            synced_at: None,
        }));
        if keys.len() as i64 == limit {
            return Ok(keys);
        }
    }
    let mut aged = t::tenant_config
        .select((t::tenant_id, t::stripe_synced_at.assume_not_null()))
        .filter(t::stripe_customer_id.is_not_null())
        .filter(t::stripe_synced_at.lt(before))
        .into_boxed();
    if let Some(WalkKey {
        tenant_id,
        synced_at: Some(at),
    }) = after
    {
        aged = aged.filter(
            t::stripe_synced_at.gt(*at).or(t::stripe_synced_at
                .eq(*at)
                .and(t::tenant_id.gt(tenant_id.clone()))),
        );
    }
    let rows: Vec<(String, NaiveDateTime)> = aged
        .order((t::stripe_synced_at.asc(), t::tenant_id.asc()))
        .limit(limit - keys.len() as i64)
        .load(conn)?;
    keys.extend(rows.into_iter().map(|(tenant_id, at)| WalkKey {
        tenant_id,
        synced_at: Some(at),
    }));
    Ok(keys)
}

/// How many tenants `selection` holds now (a bulk command's progress total).
pub fn count(conn: &mut DbConnection, selection: Selection) -> QueryResult<i64> {
    use tenant_config::dsl as t;
    let mut query = t::tenant_config.count().into_boxed();
    query = match selection {
        Selection::Unlinked => query.filter(t::stripe_customer_id.is_null()),
        Selection::Linked => query.filter(t::stripe_customer_id.is_not_null()),
        Selection::All => query,
        Selection::SyncDue { before } => query.filter(t::stripe_customer_id.is_not_null()).filter(
            t::stripe_synced_at
                .is_null()
                .or(t::stripe_synced_at.lt(before)),
        ),
    };
    query.get_result(conn)
}

/// Marks whether the Stripe customer still needs the local profile pushed.
pub fn set_profile_sync_pending(
    conn: &mut DbConnection,
    tenant: &TenantId,
    pending: bool,
) -> QueryResult<()> {
    use tenant_config::dsl as t;
    diesel::update(t::tenant_config.find(tenant.as_str()))
        .set(t::profile_sync_pending.eq(pending))
        .execute(conn)?;
    Ok(())
}

/// Unlinks a customer Stripe deleted, with its subscription state, so the
/// next upgrade creates a new one. Keeps `trial_used_at`: one trial per
/// tenant, whatever happens to its customers. True if it was linked.
pub fn unlink_customer(
    conn: &mut DbConnection,
    tenant: &TenantId,
    customer_id: &str,
) -> QueryResult<bool> {
    use tenant_config::dsl as t;
    conn.transaction(|c| {
        let unlinked = diesel::update(
            t::tenant_config
                .find(tenant.as_str())
                .filter(t::stripe_customer_id.eq(customer_id)),
        )
        .set(t::stripe_customer_id.eq(None::<String>))
        .execute(c)?;
        if unlinked == 1 {
            super::subscriptions::forget(c, tenant)?;
        }
        Ok(unlinked == 1)
    })
}

/// Fixes the tenant's currency the first time a subscription shows one
/// (Stripe keeps one currency per customer); later calls change nothing.
pub fn fix_currency(conn: &mut DbConnection, tenant: &TenantId, currency: &str) -> QueryResult<()> {
    use tenant_config::dsl as t;
    diesel::update(
        t::tenant_config
            .find(tenant.as_str())
            .filter(t::currency.is_null()),
    )
    .set(t::currency.eq(currency))
    .execute(conn)?;
    Ok(())
}

/// Records that `sync` read the tenant from Stripe just now.
pub fn mark_synced(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
) -> QueryResult<()> {
    use tenant_config::dsl as t;
    diesel::update(t::tenant_config.find(tenant.as_str()))
        .set(t::stripe_synced_at.eq(now))
        .execute(conn)?;
    Ok(())
}
