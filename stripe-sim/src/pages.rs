//! Hosted pages: the Checkout page (a Pay button that completes the session and
//! redirects to `success_url`) and a minimal billing portal page. Plain HTML, no
//! scripts, so a test can drive them with any HTTP client.

use std::sync::Arc;

use hyper::http::request::Parts;
use hyper::{header, Method, Response};
use serde_json::Value;

use crate::control;
use crate::http::{simple_response, Body};
use crate::state::Shared;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: u16, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>{t}</h1>{body}\
         <p><small>stripe-sim (test mode)</small></p></body></html>",
        t = escape(title)
    );
    simple_response(status, "text/html; charset=utf-8", html)
}

fn redirect(location: &str) -> Response<Body> {
    let mut resp = simple_response(303, "text/html; charset=utf-8", "");
    if let Ok(v) = header::HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}

pub(crate) fn handle(shared: &Arc<Shared>, parts: &Parts) -> Response<Body> {
    let segs: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    match (&parts.method, segs.as_slice()) {
        (&Method::GET, ["checkout", id]) => checkout_page(shared, id),
        (&Method::POST, ["checkout", id, "pay"]) => pay(shared, id),
        (&Method::GET, ["billing_portal", id]) => portal_page(shared, id),
        _ => page(404, "Not found", "<p>No such page.</p>"),
    }
}

fn checkout_page(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let ctx = shared.ctx(None, None);
    let session = shared.with_store(|s| s.retrieve_session(&ctx, id).cloned());
    let Ok(session) = session else {
        return page(
            404,
            "Checkout",
            "<p>This checkout session does not exist.</p>",
        );
    };
    let status = session["status"].as_str().unwrap_or("");
    if status != "open" {
        return page(
            410,
            "Checkout",
            &format!("<p>This checkout session is {}.</p>", escape(status)),
        );
    }
    let amount = money(
        session["amount_total"].as_i64().unwrap_or(0),
        session["currency"].as_str().unwrap_or("usd"),
    );
    let cancel = match session["cancel_url"].as_str() {
        Some(u) => format!("<p><a id=\"cancel\" href=\"{}\">Cancel</a></p>", escape(u)),
        None => String::new(),
    };
    page(
        200,
        "Checkout",
        &format!(
            "<p>Session <code>{id}</code> ({mode})</p><p>Total due: <strong>{amount}</strong></p>\
             <form method=\"post\" action=\"/checkout/{id}/pay\"><button id=\"pay\" type=\"submit\">Pay</button></form>{cancel}",
            id = escape(id),
            mode = escape(session["mode"].as_str().unwrap_or("")),
        ),
    )
}

fn pay(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    match control::complete_checkout(shared, id) {
        Ok(_) => {
            let success = shared
                .store
                .lock()
                .sessions
                .get(id)
                .and_then(|s| s["success_url"].as_str().map(str::to_string));
            match success {
                Some(url) => redirect(&url.replace("{CHECKOUT_SESSION_ID}", id)),
                None => page(200, "Payment complete", "<p>Thank you.</p>"),
            }
        }
        Err(e) => page(
            e.status,
            "Checkout",
            &format!("<p>{}</p>", escape(&e.message)),
        ),
    }
}

fn portal_page(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let store = shared.store.lock();
    let Some(session) = store.retrieve_portal_session(id) else {
        return page(
            404,
            "Billing portal",
            "<p>This portal session does not exist.</p>",
        );
    };
    let customer = session["customer"].as_str().unwrap_or("");
    let subs: Vec<&Value> = store
        .subscriptions
        .iter_newest()
        .map(|e| &e.obj)
        .filter(|s| s["customer"] == customer)
        .collect();
    let mut html = format!("<p>Customer <code>{}</code></p><ul>", escape(customer));
    for s in subs {
        html.push_str(&format!(
            "<li><code>{}</code>: {}</li>",
            escape(s["id"].as_str().unwrap_or("")),
            escape(s["status"].as_str().unwrap_or(""))
        ));
    }
    html.push_str("</ul>");
    if let Some(ret) = session["return_url"].as_str() {
        html.push_str(&format!(
            "<p><a id=\"return\" href=\"{}\">Return</a></p>",
            escape(ret)
        ));
    }
    page(200, "Billing portal", &html)
}
