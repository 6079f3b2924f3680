//! The simulator's state: one table per resource, kept in creation order so lists can
//! page newest-first like Stripe. Everything lives behind one mutex (see `server`);
//! operations are synchronous and short. Events produced by an operation are queued
//! in `outbox` and handed to webhook delivery after the lock is released.

mod catalog;
mod changes;
mod checkout;
mod checkout_billing;
mod clockwork;
mod coupons;
mod currency;
mod customers;
mod events;
mod invoices;
mod metered;
mod meters;
mod periods;
mod portal;
mod proration;
mod schedules;
mod search;
mod sub_billing;
mod subscriptions;
mod tax;
mod tax_ids;
mod totals;

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{json, Value};

use crate::config::{FailedPaymentAction, PriceSeed};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

pub(crate) use checkout::SessionExtra;
pub(crate) use clockwork::Agenda;
pub(crate) use invoices::Dunning;
pub(crate) use metered::Metering;
pub(crate) use meters::MeterEvents;
pub(crate) use subscriptions::SubExtra;
pub use tax::DEFAULT_SELLER_COUNTRY;
pub use tax_ids::VERIFICATION_DELAY_S;

/// Events kept for `GET /v1/events`; older ones are forgotten (Stripe keeps 30 days).
const MAX_EVENTS: usize = 20_000;

/// Per-operation context: the simulator's notion of "now" and of the request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub now: i64,
    pub now_ms: i64,
    pub search_lag_ms: i64,
    pub base_url: String,
    /// Whether a webhook endpoint is configured (sets `pending_webhooks`, queues deliveries).
    pub webhooks_on: bool,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// One stored object.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub obj: Value,
    pub seq: u64,
    /// Simulator time (ms) from which `/search` sees this object.
    pub searchable_at_ms: i64,
}

/// Objects by id plus their creation order.
#[derive(Debug, Default)]
pub(crate) struct Table {
    map: HashMap<String, Entry>,
    /// Ids in creation order; ids removed from `map` are skipped and compacted lazily.
    order: VecDeque<String>,
    next_seq: u64,
}

impl Table {
    pub fn insert(&mut self, id: String, obj: Value, searchable_at_ms: i64) {
        self.next_seq += 1;
        let entry = Entry {
            obj,
            seq: self.next_seq,
            searchable_at_ms,
        };
        self.order.push_back(id.clone());
        self.map.insert(id, entry);
    }

    pub fn get(&self, id: &str) -> Option<&Value> {
        self.map.get(id).map(|e| &e.obj)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.map.get_mut(id).map(|e| &mut e.obj)
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.map.get(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        let removed = self.map.remove(id).map(|e| e.obj);
        if self.order.len() > 1024 && self.order.len() > 2 * self.map.len() {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Forgets the oldest object (bounded tables such as events).
    pub fn pop_oldest(&mut self) {
        while let Some(id) = self.order.pop_front() {
            if self.map.remove(&id).is_some() {
                return;
            }
        }
    }

    /// Entries newest first.
    pub fn iter_newest(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.order.iter().rev().filter_map(|id| self.map.get(id))
    }
}

/// Newest-first cursor pagination over `table` as Stripe does it (`limit`,
/// `starting_after`, `ending_before`), over the entries that pass `keep`.
pub(crate) fn paginate(
    table: &Table,
    params: Params<'_>,
    url: &str,
    resource: &str,
    keep: impl Fn(&Value) -> bool,
) -> Result<Value, ApiError> {
    paginate_entries(table, table.iter_newest(), params, url, resource, keep)
}

/// Like [`paginate`] over a subset of `table` (e.g. from an index), newest first.
/// Stops scanning at the first entry older than a `created[gt|gte]` bound: tables
/// are in creation order and simulator time never goes back.
pub(crate) fn paginate_entries<'t>(
    table: &'t Table,
    entries: impl Iterator<Item = &'t Entry>,
    params: Params<'_>,
    url: &str,
    resource: &str,
    keep: impl Fn(&Value) -> bool,
) -> Result<Value, ApiError> {
    let limit = params.limit()?;
    let cursor = |key: &str| -> Result<Option<u64>, ApiError> {
        match params.str(key)? {
            None => Ok(None),
            Some(id) if id.is_empty() => Ok(None),
            Some(id) => table
                .entry(&id)
                .map(|e| Some(e.seq))
                .ok_or_else(|| ApiError::no_such_param(resource, &id, key)),
        }
    };
    let after = cursor("starting_after")?;
    let before = cursor("ending_before")?;
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }
    let oldest = created_lower_bound(params);
    let matching = entries
        .take_while(|e| oldest.is_none_or(|min| e.obj["created"].as_i64().is_none_or(|c| c >= min)))
        .filter(|e| keep(&e.obj));
    let (data, has_more) = if let Some(before) = before {
        // The `limit` objects just newer than the cursor, still newest first.
        let newer: Vec<&Entry> = matching.take_while(|e| e.seq > before).collect();
        let skip = newer.len().saturating_sub(limit);
        (
            newer[skip..].iter().map(|e| e.obj.clone()).collect(),
            skip > 0,
        )
    } else {
        let mut page: Vec<Value> = Vec::with_capacity(limit.min(16));
        let mut has_more = false;
        for e in matching.filter(|e| after.is_none_or(|a| e.seq < a)) {
            if page.len() == limit {
                has_more = true;
                break;
            }
            page.push(e.obj.clone());
        }
        (page, has_more)
    };
    Ok(objects::list(url, data, has_more))
}

/// The smallest `created` a `created[gt|gte]` (or exact) filter admits.
fn created_lower_bound(params: Params<'_>) -> Option<i64> {
    let c = params.child("created");
    match params.get("created")? {
        Value::Object(_) => {
            let gt = c.int("gt").ok().flatten().map(|v| v + 1);
            let gte = c.int("gte").ok().flatten();
            gt.into_iter().chain(gte).max()
        }
        _ => params.int("created").ok().flatten(),
    }
}

/// `created` filter: an exact timestamp or `created[gt|gte|lt|lte]`.
pub(crate) fn created_filter(params: Params<'_>) -> Result<impl Fn(&Value) -> bool, ApiError> {
    let mut bounds: Vec<(&'static str, i64)> = Vec::new();
    match params.get("created") {
        None => {}
        Some(Value::Object(_)) => {
            let c = params.child("created");
            for op in ["gt", "gte", "lt", "lte"] {
                if let Some(v) = c
                    .int(op)
                    .map_err(|_| ApiError::invalid(format!("created[{op}]"), "Invalid integer"))?
                {
                    bounds.push((op, v));
                }
            }
        }
        Some(_) => {
            if let Some(v) = params.int("created")? {
                bounds.push(("eq", v));
            }
        }
    }
    Ok(move |obj: &Value| {
        let created = obj["created"].as_i64().unwrap_or(0);
        bounds.iter().all(|(op, v)| match *op {
            "gt" => created > *v,
            "gte" => created >= *v,
            "lt" => created < *v,
            "lte" => created <= *v,
            _ => created == *v,
        })
    })
}

/// The simulator's whole state.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub customers: Table,
    pub deleted_customers: HashSet<String>,
    /// Live customer ids by email, oldest first (the `email` list filter is common
    /// and must not scan every customer).
    pub customers_by_email: HashMap<String, Vec<String>>,
    pub products: Table,
    pub prices: Table,
    pub sessions: Table,
    pub session_extra: HashMap<String, SessionExtra>,
    pub subscriptions: Table,
    /// Facts about a subscription that are not part of Stripe's object.
    pub sub_extra: HashMap<String, SubExtra>,
    pub invoices: Table,
    /// Prorations not invoiced yet, by subscription, oldest first: they join the
    /// subscription's next invoice (`create_prorations`).
    pub pending_items: HashMap<String, Vec<Value>>,
    /// Automatic payment retries of open invoices, by invoice.
    pub dunning: HashMap<String, Dunning>,
    /// Customers whose card declines every charge (`/_sim/customers/{id}/card`).
    pub declining_cards: HashSet<String>,
    pub schedules: Table,
    pub portal_sessions: Table,
    /// Billing meters, the events they aggregate, and metered items' usage windows.
    pub meters: Table,
    pub meter_events: MeterEvents,
    pub metering: Metering,
    pub events: Table,
    /// Events produced by the current operation, for webhook delivery.
    pub outbox: Vec<Value>,
    /// When the clock next has work to do (renewals, trial ends, retries, phases).
    pub agenda: Agenda,
    pub after_failed_payments: FailedPaymentAction,
    /// Customer tax ids, automatic tax rates, the seller's country.
    pub tax: tax::TaxState,
    /// Coupons, promotion codes, discounts.
    pub promos: coupons::PromoState,
}

impl Store {
    /// A fresh store with the configured prices (and a product for each) in place.
    pub fn new(seeds: &[PriceSeed], now: i64, after_failed_payments: FailedPaymentAction) -> Store {
        let mut store = Store {
            after_failed_payments,
            ..Store::default()
        };
        for seed in seeds {
            store.seed_price(seed, now);
        }
        store
    }

    /// Records an event about `object` and queues it for delivery.
    pub fn emit(&mut self, ctx: &Ctx, kind: &str, object: &Value, previous: Option<Value>) {
        let id = ids::object_id("evt_");
        let event = objects::event(
            &id,
            ctx.now,
            kind,
            object.clone(),
            previous,
            i64::from(ctx.webhooks_on),
            (ctx.request_id.clone(), ctx.idempotency_key.clone()),
        );
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_oldest();
        }
        if ctx.webhooks_on {
            self.outbox.push(event.clone());
        }
        self.events.insert(id, event, ctx.now_ms);
    }

    /// Finds any stored object by its id prefix (for `expand[]`).
    pub fn lookup(&self, id: &str) -> Option<&Value> {
        if id.starts_with("sub_sched_") {
            return self.schedules.get(id);
        }
        let table = match id.split('_').next()? {
            "cus" => &self.customers,
            "prod" => &self.products,
            "price" | "plan" => &self.prices,
            "cs" => &self.sessions,
            "sub" => &self.subscriptions,
            "in" => &self.invoices,
            "bps" => &self.portal_sessions,
            "mtr" => &self.meters,
            "evt" => &self.events,
            "txi" => &self.tax.tax_ids,
            "txr" => &self.tax.rates,
            "promo" => &self.promos.promotion_codes,
            "di" => &self.promos.discounts,
            // Prices and coupons may have ids of the caller's choosing.
            _ => return self.prices.get(id).or_else(|| self.promos.coupons.get(id)),
        };
        table.get(id)
    }

    /// Replaces ids with the objects they name along each `expand` path
    /// (`customer`, `subscription.latest_invoice`, `data.customer`, …).
    pub fn expand(&self, value: &mut Value, paths: &[String]) {
        for path in paths {
            if path == "tax" && value["object"] == "customer" {
                value["tax"] = self.customer_tax_hash(value);
                continue;
            }
            let segs: Vec<&str> = path.split('.').collect();
            self.expand_path(value, &segs);
        }
    }

    fn expand_path(&self, value: &mut Value, segs: &[&str]) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if let Value::Array(items) = value {
            for item in items {
                self.expand_path(item, segs);
            }
            return;
        }
        let Some(field) = value.get_mut(*first) else {
            return;
        };
        if let Value::String(id) = field {
            if let Some(found) = self.lookup(id) {
                *field = found.clone();
            }
        }
        if !rest.is_empty() {
            self.expand_path(field, rest);
        }
    }

    /// Object counts by resource, for `GET /_sim/stats`.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("billing_meter_events", self.meter_events.len() as u64),
            ("billing_meters", self.meters.len() as u64),
            ("billing_portal_sessions", self.portal_sessions.len() as u64),
            ("checkout_sessions", self.sessions.len() as u64),
            ("coupons", self.promos.coupons.len() as u64),
            ("customers", self.customers.len() as u64),
            ("deleted_customers", self.deleted_customers.len() as u64),
            ("events", self.events.len() as u64),
            ("invoices", self.invoices.len() as u64),
            ("prices", self.prices.len() as u64),
            ("products", self.products.len() as u64),
            ("promotion_codes", self.promos.promotion_codes.len() as u64),
            ("subscription_schedules", self.schedules.len() as u64),
            ("subscriptions", self.subscriptions.len() as u64),
            ("tax_ids", self.tax.tax_ids.len() as u64),
        ]
    }
}

/// `{}` shorthand used by several resources.
pub(crate) fn empty_object() -> Value {
    json!({})
}
