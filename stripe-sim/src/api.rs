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

fn render(store: &Store, v: &Value, expand: &[String]) -> Bytes {
    let bytes = if expand.is_empty() {
        serde_json::to_vec(v)
    } else {
        let mut copy = v.clone();
        store.expand(&mut copy, expand);
        serde_json::to_vec(&copy)
    };
    Bytes::from(bytes.unwrap_or_default())
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
    shared.with_store(|s| {
        let out = match ep {
            CustomerCreate => {
                let v = s.create_customer(ctx, p)?;
                render(s, &v, &expand)
            }
            CustomerList => render(s, &s.list_customers(p)?, &expand),
            CustomerSearch => render(s, &s.search_customers(ctx, p)?, &expand),
            CustomerRetrieve => render(s, s.retrieve_customer(id)?.as_ref(), &expand),
            CustomerUpdate => {
                let v = s.update_customer(ctx, id, p)?;
                render(s, &v, &expand)
            }
            CustomerDelete => {
                let v = s.delete_customer(ctx, id)?;
                render(s, &v, &expand)
            }
            ProductCreate => {
                let v = s.create_product(ctx, p)?;
                render(s, &v, &expand)
            }
            ProductList => render(s, &s.list_products(p)?, &expand),
            ProductRetrieve => render(s, s.retrieve_product(id)?, &expand),
            PriceCreate => {
                let v = s.create_price(ctx, p)?;
                render(s, &v, &expand)
            }
            PriceList => render(s, &s.list_prices(p)?, &expand),
            PriceRetrieve => render(s, s.retrieve_price(id)?, &expand),
            PriceUpdate => {
                let v = s.update_price(ctx, id, p)?;
                render(s, &v, &expand)
            }
            SessionCreate => {
                let v = s.create_session(ctx, p)?;
                render(s, &v, &expand)
            }
            SessionList => render(s, &s.list_sessions(p)?, &expand),
            SessionRetrieve => {
                let v = s.retrieve_session(ctx, id)?.clone();
                render(s, &v, &expand)
            }
            SessionExpire => {
                let v = s.expire_session(ctx, id)?;
                render(s, &v, &expand)
            }
            SubscriptionCreate => {
                let v = s.create_subscription(ctx, p)?;
                render(s, &v, &expand)
            }
            SubscriptionList => render(s, &s.list_subscriptions(p)?, &expand),
            SubscriptionRetrieve => render(s, s.retrieve_subscription(id)?, &expand),
            SubscriptionUpdate => {
                let v = s.update_subscription(ctx, id, p)?;
                render(s, &v, &expand)
            }
            SubscriptionCancel => {
                let v = s.cancel_subscription(ctx, id, "cancellation_requested")?;
                render(s, &v, &expand)
            }
            InvoiceList => render(s, &s.list_invoices(p)?, &expand),
            InvoiceRetrieve => render(s, s.retrieve_invoice(id)?, &expand),
            PortalSessionCreate => {
                let v = s.create_portal_session(ctx, p)?;
                render(s, &v, &expand)
            }
            EventList => render(s, &s.list_events(p)?, &expand),
            EventRetrieve => render(s, s.retrieve_event(id)?, &expand),
            Unknown => return Err(ApiError::unrecognized_url("?", "?")),
        };
        Ok(out)
    })
}
