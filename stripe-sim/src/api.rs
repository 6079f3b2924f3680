//! The `/v1` endpoints: parameters in, a serialized Stripe object out. Runs under the
//! store lock; serialization of borrowed objects happens there too, so retrieves do
//! not clone.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;
use crate::form::Params;
use crate::routes::Endpoint;
use crate::state::Shared;
use crate::store::{Ctx, Store};

/// A result either already serialized under the lock (borrowed objects: no clone)
/// or an owned object serialized after the lock is released.
enum Out {
    Bytes(Bytes),
    Owned(Value),
}

fn borrowed(store: &Store, v: &Value, expand: &[String]) -> Out {
    if expand.is_empty() {
        Out::Bytes(to_bytes(v))
    } else {
        let mut copy = v.clone();
        store.expand(&mut copy, expand);
        Out::Owned(copy)
    }
}

fn owned(store: &Store, mut v: Value, expand: &[String]) -> Out {
    if !expand.is_empty() {
        store.expand(&mut v, expand);
    }
    Out::Owned(v)
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Executes one `/v1` request. `id` is the `{id}` path segment for endpoints that have one.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    ep: Endpoint,
    id: Option<&str>,
    params: &Value,
    ctx: &Ctx,
) -> Result<Bytes, ApiError> {
    use Endpoint::*;
    let p = Params(params);
    let expand = p.expand();
    let id = id.unwrap_or_default();
    let out = shared.with_store(|s| {
        let out = match ep {
            CustomerCreate => {
                let v = s.create_customer(ctx, p)?;
                owned(s, v, &expand)
            }
            CustomerList => {
                let v = s.list_customers(p)?;
                owned(s, v, &expand)
            }
            CustomerSearch => {
                let v = s.search_customers(ctx, p)?;
                owned(s, v, &expand)
            }
            CustomerRetrieve => borrowed(s, s.retrieve_customer(id)?.as_ref(), &expand),
            CustomerUpdate => {
                let v = s.update_customer(ctx, id, p)?;
                owned(s, v, &expand)
            }
            CustomerDelete => {
                let v = s.delete_customer(ctx, id)?;
                owned(s, v, &expand)
            }
            ProductCreate => {
                let v = s.create_product(ctx, p)?;
                owned(s, v, &expand)
            }
            ProductList => {
                let v = s.list_products(p)?;
                owned(s, v, &expand)
            }
            ProductRetrieve => borrowed(s, s.retrieve_product(id)?, &expand),
            PriceCreate => {
                let v = s.create_price(ctx, p)?;
                owned(s, v, &expand)
            }
            PriceList => {
                let v = s.list_prices(p)?;
                owned(s, v, &expand)
            }
            PriceRetrieve => borrowed(s, s.retrieve_price(id)?, &expand),
            PriceUpdate => {
                let v = s.update_price(ctx, id, p)?;
                owned(s, v, &expand)
            }
            SessionCreate => {
                let v = s.create_session(ctx, p)?;
                owned(s, v, &expand)
            }
            SessionList => {
                let v = s.list_sessions(p)?;
                owned(s, v, &expand)
            }
            SessionRetrieve => {
                let v = s.retrieve_session(ctx, id)?.clone();
                owned(s, v, &expand)
            }
            SessionExpire => {
                let v = s.expire_session(ctx, id)?;
                owned(s, v, &expand)
            }
            SubscriptionCreate => {
                let v = s.create_subscription(ctx, p)?;
                owned(s, v, &expand)
            }
            SubscriptionList => {
                let v = s.list_subscriptions(p)?;
                owned(s, v, &expand)
            }
            SubscriptionRetrieve => borrowed(s, s.retrieve_subscription(id)?, &expand),
            SubscriptionUpdate => {
                let v = s.update_subscription(ctx, id, p)?;
                owned(s, v, &expand)
            }
            SubscriptionCancel => {
                let v = s.cancel_subscription(ctx, id, "cancellation_requested")?;
                owned(s, v, &expand)
            }
            InvoiceList => {
                let v = s.list_invoices(p)?;
                owned(s, v, &expand)
            }
            InvoiceRetrieve => borrowed(s, s.retrieve_invoice(id)?, &expand),
            InvoicePay => {
                let v = s.pay_invoice(ctx, id, p)?;
                owned(s, v, &expand)
            }
            ScheduleCreate => {
                let v = s.create_schedule(ctx, p)?;
                owned(s, v, &expand)
            }
            ScheduleList => {
                let v = s.list_schedules(p)?;
                owned(s, v, &expand)
            }
            ScheduleRetrieve => borrowed(s, s.retrieve_schedule(id)?, &expand),
            ScheduleUpdate => {
                let v = s.update_schedule(ctx, id, p)?;
                owned(s, v, &expand)
            }
            ScheduleRelease => {
                let v = s.release_schedule(ctx, id)?;
                owned(s, v, &expand)
            }
            ScheduleCancel => {
                let v = s.cancel_schedule(ctx, id)?;
                owned(s, v, &expand)
            }
            PortalSessionCreate => {
                let v = s.create_portal_session(ctx, p)?;
                owned(s, v, &expand)
            }
            MeterCreate => {
                let v = s.create_meter(ctx, p)?;
                owned(s, v, &expand)
            }
            MeterList => {
                let v = s.list_meters(p)?;
                owned(s, v, &expand)
            }
            MeterRetrieve => borrowed(s, s.retrieve_meter(id)?, &expand),
            MeterUpdate => {
                let v = s.update_meter(ctx, id, p)?;
                owned(s, v, &expand)
            }
            MeterDeactivate | MeterReactivate => {
                let v = s.set_meter_active(ctx, id, ep == MeterReactivate)?;
                owned(s, v, &expand)
            }
            MeterEventSummaryList => {
                let v = s.list_meter_event_summaries(id, p)?;
                owned(s, v, &expand)
            }
            MeterEventCreate => {
                let v = s.create_meter_event(ctx, p)?;
                owned(s, v, &expand)
            }
            MeterEventAdjustmentCreate => {
                let v = s.create_meter_event_adjustment(ctx, p)?;
                owned(s, v, &expand)
            }
            EventList => {
                let v = s.list_events(p)?;
                owned(s, v, &expand)
            }
            EventRetrieve => borrowed(s, s.retrieve_event(id)?, &expand),
            other => match crate::api_tax::handle(s, other, id, p, ctx) {
                Some(v) => owned(s, v?, &expand),
                None => return Err(ApiError::unrecognized_url("?", "?")),
            },
        };
        Ok(out)
    })?;
    Ok(match out {
        Out::Bytes(b) => b,
        Out::Owned(v) => to_bytes(&v),
    })
}
