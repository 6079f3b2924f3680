//! The control plane under `/_sim/` (no auth, JSON in and out): statistics, faults,
//! paying checkouts, forcing subscription statuses, customers' cards, the clock,
//! runtime settings and reset. The library handle calls the same functions directly.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::{json, Value};

use crate::config::FailedPaymentAction;
use crate::error::ApiError;
use crate::faults::{Fault, RandomFault};
use crate::form::Params;
use crate::http::{error_response, simple_response, Body};
use crate::state::Shared;

/// Pays a checkout session (see `Store::complete_session_with`).
pub(crate) fn complete_checkout(shared: &Arc<Shared>, id: &str) -> Result<Value, ApiError> {
    complete_checkout_with(shared, id, &json!({}))
}

/// Pays a checkout session with what the buyer entered (address, name, tax id,
/// promotion code).
pub(crate) fn complete_checkout_with(
    shared: &Arc<Shared>,
    id: &str,
    details: &Value,
) -> Result<Value, ApiError> {
    let ctx = shared.ctx(None, None);
    shared.with_store(|s| s.complete_session_with(&ctx, id, Params(details)))
}

/// Settles (or resets) a tax id's verification now.
pub(crate) fn set_tax_id_verification(
    shared: &Arc<Shared>,
    id: &str,
    status: &str,
) -> Result<Value, ApiError> {
    let ctx = shared.ctx(None, None);
    shared.with_store(|s| s.set_tax_id_verification(&ctx, id, status))
}

pub(crate) fn set_subscription_status(
    shared: &Arc<Shared>,
    id: &str,
    status: &str,
) -> Result<Value, ApiError> {
    let ctx = shared.ctx(None, None);
    shared.with_store(|s| s.set_subscription_status(&ctx, id, status))
}

/// Makes every charge to `customer`'s card fail (or succeed again).
pub(crate) fn set_card(
    shared: &Arc<Shared>,
    customer: &str,
    declines: bool,
) -> Result<Value, ApiError> {
    shared.with_store(|s| s.set_card(customer, declines))
}

/// Charges an open invoice now, as `POST /v1/invoices/{id}/pay` does.
pub(crate) fn pay_invoice(shared: &Arc<Shared>, id: &str) -> Result<Value, ApiError> {
    let ctx = shared.ctx(None, None);
    let none = json!({});
    shared.with_store(|s| s.pay_invoice(&ctx, id, Params(&none)))
}

/// Charges every open invoice of `customer`, oldest first (the portal's "Pay open
/// invoices"). Returns the invoices paid and those whose charge was declined.
pub(crate) fn pay_open_invoices(
    shared: &Arc<Shared>,
    customer: &str,
) -> (Vec<String>, Vec<String>) {
    let ctx = shared.ctx(None, None);
    let none = json!({});
    shared.with_store(|s| {
        let mut paid = Vec::new();
        let mut declined = Vec::new();
        for id in s.open_invoices_of(customer) {
            match s.pay_invoice(&ctx, &id, Params(&none)) {
                Ok(_) => paid.push(id),
                Err(_) => declined.push(id),
            }
        }
        (paid, declined)
    })
}

pub(crate) fn add_fault(shared: &Shared, fault: Fault) {
    let mut faults = shared.faults.lock();
    faults.add(fault);
    shared
        .faults_active
        .store(!faults.is_empty(), Ordering::Relaxed);
}

pub(crate) fn add_random_fault(shared: &Shared, fault: RandomFault) {
    let mut faults = shared.faults.lock();
    faults.add_random(fault);
    shared.faults_active.store(true, Ordering::Relaxed);
}

pub(crate) fn clear_faults(shared: &Shared) {
    shared.faults.lock().clear();
    shared.faults_active.store(false, Ordering::Relaxed);
}

fn ok_json(v: &Value) -> Response<Body> {
    simple_response(
        200,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn err(e: ApiError) -> Response<Body> {
    error_response(&e, "req_sim", None)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("Body is not JSON: {e}")))
}

pub(crate) fn handle(shared: &Arc<Shared>, parts: &Parts, body: &[u8]) -> Response<Body> {
    match handle_inner(shared, parts, body) {
        Ok(resp) => resp,
        Err(e) => err(e),
    }
}

fn handle_inner(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let path = parts.uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches("/_sim/").split('/').collect();
    let m = &parts.method;
    Ok(match (m, segs.as_slice()) {
        (&Method::GET, ["health"]) => ok_json(&json!({ "ok": true })),
        (&Method::GET, ["stats"]) => {
            ok_json(&serde_json::to_value(shared.stats()).unwrap_or_default())
        }
        (&Method::GET, ["stats", "per_second"]) => {
            let counts: serde_json::Map<String, Value> = shared
                .arrivals
                .per_second()
                .into_iter()
                .map(|(second, n)| (second.to_string(), json!(n)))
                .collect();
            ok_json(&json!({ "requests_per_second": counts }))
        }
        (&Method::GET, ["faults"]) => {
            let faults = shared.faults.lock();
            ok_json(&json!({ "faults": faults.list(), "random": faults.list_random() }))
        }
        (&Method::POST, ["faults"]) => {
            let v = parse_json(body)?;
            if v.get("percent").is_some() {
                let fault = RandomFault::from_json(&v).map_err(|m| ApiError::invalid("body", m))?;
                add_random_fault(shared, fault);
            } else {
                let fault = Fault::from_json(&v).map_err(|m| ApiError::invalid("body", m))?;
                add_fault(shared, fault);
            }
            let faults = shared.faults.lock();
            ok_json(&json!({ "faults": faults.list(), "random": faults.list_random() }))
        }
        (&Method::DELETE, ["faults"]) => {
            clear_faults(shared);
            ok_json(&json!({ "faults": [] }))
        }
        (&Method::POST, ["checkout", id, "complete"]) => {
            let details = parse_json(body)?;
            ok_json(&complete_checkout_with(shared, id, &details)?)
        }
        (&Method::POST, ["tax_ids", id, "verification"]) => {
            let v = parse_json(body)?;
            let status = v["status"]
                .as_str()
                .ok_or_else(|| ApiError::missing_param("status"))?;
            ok_json(&set_tax_id_verification(shared, id, status)?)
        }
        (&Method::POST, ["subscriptions", id, "status"]) => {
            let v = parse_json(body)?;
            let status = v["status"]
                .as_str()
                .ok_or_else(|| ApiError::missing_param("status"))?;
            ok_json(&set_subscription_status(shared, id, status)?)
        }
        (&Method::POST, ["customers", id, "card"]) => {
            let v = parse_json(body)?;
            let declines = v["declines"]
                .as_bool()
                .ok_or_else(|| ApiError::missing_param("declines"))?;
            ok_json(&set_card(shared, id, declines)?)
        }
        (&Method::GET, ["clock"]) => ok_json(&json!({ "now": shared.clock.now() })),
        (&Method::POST, ["clock", "advance"]) => {
            let v = parse_json(body)?;
            let seconds = v["seconds"]
                .as_i64()
                .ok_or_else(|| ApiError::missing_param("seconds"))?;
            if seconds < 0 {
                return Err(ApiError::invalid(
                    "seconds",
                    "The clock only moves forward.",
                ));
            }
            shared.advance_clock(seconds);
            ok_json(&json!({ "now": shared.clock.now() }))
        }
        (&Method::POST, ["reset"]) => {
            shared.reset();
            ok_json(&json!({ "ok": true }))
        }
        (&Method::POST, ["config"]) => {
            let v = parse_json(body)?;
            if let Some(ms) = v.get("latency_ms") {
                shared
                    .latency_ms
                    .store(ms.as_u64().unwrap_or(0), Ordering::Relaxed);
            }
            if let Some(ms) = v.get("search_lag_ms") {
                shared
                    .search_lag_ms
                    .store(ms.as_u64().unwrap_or(0), Ordering::Relaxed);
            }
            if let Some(url) = v.get("webhook_url") {
                shared.set_webhook_url(url.as_str().filter(|u| !u.is_empty()).map(str::to_string));
            }
            if let Some(rate) = v.get("rate_limit") {
                shared.set_rate_limit(rate.as_u64().map(|r| r.min(u32::MAX as u64) as u32));
            }
            if let Some(country) = v.get("seller_country") {
                let c = crate::config::parse_seller_country(country.as_str().unwrap_or(""))
                    .map_err(|e| ApiError::invalid("seller_country", e))?;
                shared.store.lock().tax.seller_country = c;
            }
            if let Some(grace) = v.get("invoice_grace_seconds") {
                let grace = grace.as_i64().filter(|g| *g >= 0).ok_or_else(|| {
                    ApiError::invalid(
                        "invoice_grace_seconds",
                        "invoice_grace_seconds must be a non-negative integer.",
                    )
                })?;
                shared.store.lock().metering.grace_s = grace;
            }
            if let Some(action) = v.get("after_failed_payments") {
                let action: FailedPaymentAction = action
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .map_err(|e: String| ApiError::invalid("after_failed_payments", e))?;
                shared.store.lock().after_failed_payments = action;
            }
            ok_json(&json!({
                "latency_ms": shared.latency_ms.load(Ordering::Relaxed),
                "search_lag_ms": shared.search_lag_ms.load(Ordering::Relaxed),
                "webhook_url": shared.webhook_url(),
                "rate_limited": shared.rate_limited.load(Ordering::Relaxed),
                "after_failed_payments": shared.store.lock().after_failed_payments.as_str(),
                "seller_country": shared.store.lock().tax.seller_country.clone(),
                "invoice_grace_seconds": shared.store.lock().metering.grace_s,
            }))
        }
        _ => return Err(ApiError::unrecognized_url(m.as_str(), parts.uri.path())),
    })
}
