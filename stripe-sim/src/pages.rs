//! Hosted pages: the Checkout page (a Pay button that completes the session and
//! redirects to `success_url`), the billing portal (subscriptions, invoices, "Pay
//! open invoices", "Use a working card"), and each invoice's hosted page
//! (`hosted_invoice_url`, with a Pay button while open) and PDF (`invoice_pdf`).
//! Plain HTML forms, no scripts, so a test can drive them with any HTTP client.

use std::sync::Arc;

use hyper::http::request::Parts;
use hyper::{header, Method, Response};
use serde_json::Value;

use crate::http::{simple_response, Body};
use crate::objects::money as format_money;
use crate::page_billing::{self, CheckoutAsks};
use crate::state::Shared;
use crate::{control, pdf};

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

pub(crate) fn handle(shared: &Arc<Shared>, parts: &Parts, body: &[u8]) -> Response<Body> {
    let segs: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    let query = parts.uri.query().unwrap_or("");
    match (&parts.method, segs.as_slice()) {
        (&Method::GET, ["checkout", id]) => checkout_page(shared, id),
        (&Method::POST, ["checkout", id, "pay"]) => pay(shared, id, body),
        (&Method::GET, ["billing_portal", id]) => portal_page(shared, id, query),
        (&Method::POST, ["billing_portal", id, "pay_open_invoices"]) => {
            portal_pay_open_invoices(shared, id)
        }
        (&Method::POST, ["billing_portal", id, "card"]) => portal_fix_card(shared, id),
        (&Method::GET, ["invoice", id]) => invoice_page(shared, id, query),
        (&Method::GET, ["invoice", id, "pdf"]) => invoice_pdf(shared, id),
        (&Method::POST, ["invoice", id, "pay"]) => invoice_pay(shared, id),
        _ => page(404, "Not found", "<p>No such page.</p>"),
    }
}

fn checkout_page(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let ctx = shared.ctx(None, None);
    let found = shared.with_store(|s| {
        let session = s.retrieve_session(&ctx, id).cloned()?;
        let located = session["customer"]
            .as_str()
            .is_some_and(|c| s.customer_tax_country(c).is_some());
        let billing = s
            .session_extra
            .get(id)
            .map(|e| e.billing.clone())
            .unwrap_or_default();
        let asks = CheckoutAsks {
            address: (billing.automatic_tax || billing.address_required) && !located,
            name: billing.tax_id_collection,
            tax_id: billing.tax_id_collection,
            promotion_code: billing.allow_promotion_codes,
        };
        Ok::<_, crate::error::ApiError>((session, asks))
    });
    let Ok((session, asks)) = found else {
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
            "<p>Session <code>{id}</code> ({mode})</p><p>Total due: <strong id=\"total\">{amount}</strong></p>\
             <form method=\"post\" action=\"/checkout/{id}/pay\">{fields}<button id=\"pay\" type=\"submit\">Pay</button></form>{cancel}",
            id = escape(id),
            mode = escape(session["mode"].as_str().unwrap_or("")),
            fields = page_billing::checkout_fields(&session, &asks),
        ),
    )
}

fn pay(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Response<Body> {
    let details = page_billing::details_from_form(body);
    match control::complete_checkout_with(shared, id, &details) {
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

/// The portal session's customer, if the session exists.
fn portal_customer(shared: &Arc<Shared>, id: &str) -> Option<String> {
    shared.with_store(|s| {
        s.retrieve_portal_session(id)
            .and_then(|p| p["customer"].as_str().map(str::to_string))
    })
}

fn portal_page(shared: &Arc<Shared>, id: &str, query: &str) -> Response<Body> {
    let (session, subs, invoices, declines) = shared.with_store(|store| {
        let Some(session) = store.retrieve_portal_session(id).cloned() else {
            return (None, Vec::new(), Vec::new(), false);
        };
        let customer = session["customer"].as_str().unwrap_or("").to_string();
        let subs: Vec<Value> = store
            .subscriptions
            .iter_newest()
            .map(|e| &e.obj)
            .filter(|s| s["customer"] == customer.as_str())
            .cloned()
            .collect();
        let invoices: Vec<Value> = store
            .invoices
            .iter_newest()
            .map(|e| &e.obj)
            .filter(|i| i["customer"] == customer.as_str())
            .take(24)
            .cloned()
            .collect();
        let declines = store.card_declines(&customer);
        (Some(session), subs, invoices, declines)
    });
    let Some(session) = session else {
        return page(
            404,
            "Billing portal",
            "<p>This portal session does not exist.</p>",
        );
    };
    let customer = session["customer"].as_str().unwrap_or("");
    let mut html = String::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let n = value.parse::<usize>().unwrap_or(0);
        match key.as_ref() {
            "paid" if n > 0 => html.push_str(&format!(
                "<p id=\"paid\" role=\"status\">{n} invoice(s) paid.</p>"
            )),
            "declined" if n > 0 => html.push_str(&format!(
                "<p id=\"declined\" role=\"alert\">Your card was declined ({n} invoice(s) still open).</p>"
            )),
            "card" => html.push_str("<p id=\"card-updated\" role=\"status\">Card updated.</p>"),
            _ => {}
        }
    }
    html.push_str(&format!(
        "<p>Customer <code>{}</code></p>",
        escape(customer)
    ));
    html.push_str(&format!(
        "<p>Card: <span id=\"card\">{}</span></p>",
        if declines { "declining" } else { "working" }
    ));
    html.push_str("<h2>Subscriptions</h2><ul>");
    for s in &subs {
        html.push_str(&format!(
            "<li><code>{}</code>: {}</li>",
            escape(s["id"].as_str().unwrap_or("")),
            escape(s["status"].as_str().unwrap_or(""))
        ));
    }
    html.push_str("</ul><h2>Invoices</h2><ul>");
    let mut open = 0;
    for inv in &invoices {
        let status = inv["status"].as_str().unwrap_or("");
        open += usize::from(status == "open");
        let number = inv["number"].as_str().unwrap_or("(draft)");
        let link = match inv["hosted_invoice_url"].as_str() {
            Some(url) => format!("<a href=\"{}\">{}</a>", escape(url), escape(number)),
            None => escape(number),
        };
        html.push_str(&format!(
            "<li class=\"invoice\">{link}: {} — {}</li>",
            escape(&format_money(
                inv["amount_due"].as_i64().unwrap_or(0),
                inv["currency"].as_str().unwrap_or("usd")
            )),
            escape(status)
        ));
    }
    html.push_str("</ul>");
    let base = format!("/billing_portal/{}", escape(id));
    if open > 0 {
        html.push_str(&format!(
            "<form method=\"post\" action=\"{base}/pay_open_invoices\"><button id=\"pay-open-invoices\" type=\"submit\">Pay open invoices</button></form>"
        ));
    }
    if declines {
        html.push_str(&format!(
            "<form method=\"post\" action=\"{base}/card\"><button id=\"use-working-card\" type=\"submit\">Use a working card</button></form>"
        ));
    }
    if let Some(ret) = session["return_url"].as_str() {
        html.push_str(&format!(
            "<p><a id=\"return\" href=\"{}\">Return</a></p>",
            escape(ret)
        ));
    }
    page(200, "Billing portal", &html)
}

fn portal_pay_open_invoices(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let Some(customer) = portal_customer(shared, id) else {
        return page(
            404,
            "Billing portal",
            "<p>This portal session does not exist.</p>",
        );
    };
    let (paid, declined) = control::pay_open_invoices(shared, &customer);
    redirect(&format!(
        "/billing_portal/{id}?paid={}&declined={}",
        paid.len(),
        declined.len()
    ))
}

fn portal_fix_card(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let Some(customer) = portal_customer(shared, id) else {
        return page(
            404,
            "Billing portal",
            "<p>This portal session does not exist.</p>",
        );
    };
    let _ = control::set_card(shared, &customer, false);
    redirect(&format!("/billing_portal/{id}?card=updated"))
}

fn invoice_page(shared: &Arc<Shared>, id: &str, query: &str) -> Response<Body> {
    let Some(inv) = shared.with_store(|s| s.invoices.get(id).cloned()) else {
        return page(404, "Invoice", "<p>This invoice does not exist.</p>");
    };
    let currency = inv["currency"].as_str().unwrap_or("usd");
    let m = |key: &str| escape(&format_money(inv[key].as_i64().unwrap_or(0), currency));
    let status = inv["status"].as_str().unwrap_or("");
    let mut html = String::new();
    if query.contains("declined=1") {
        html.push_str("<p id=\"declined\" role=\"alert\">Your card was declined.</p>");
    }
    html.push_str(&format!(
        "<p>Invoice <strong id=\"number\">{}</strong> — <span id=\"status\">{}</span></p>\
         <p>Billed to {}</p><table><thead><tr><th>Description</th><th>Qty</th><th>Amount</th></tr></thead><tbody>",
        escape(inv["number"].as_str().unwrap_or("(draft)")),
        escape(status),
        escape(inv["customer_email"].as_str().unwrap_or(inv["customer"].as_str().unwrap_or(""))),
    ));
    for line in inv["lines"]["data"].as_array().into_iter().flatten() {
        html.push_str(&format!(
            "<tr class=\"line\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(line["description"].as_str().unwrap_or("")),
            line["quantity"].as_u64().unwrap_or(1),
            escape(&format_money(
                line["amount"].as_i64().unwrap_or(0),
                currency
            )),
        ));
    }
    for (label, amount) in page_billing::invoice_summary(&inv, &tax_rates(shared, &inv)) {
        html.push_str(&format!(
            "<tr class=\"summary\"><td>{}</td><td></td><td>{}</td></tr>",
            escape(&label),
            escape(&amount)
        ));
    }
    html.push_str(&format!(
        "</tbody></table><p>Total: {}</p><p>Amount due: <strong id=\"amount-due\">{}</strong></p><p>Amount paid: {}</p>",
        m("total"),
        m("amount_due"),
        m("amount_paid"),
    ));
    if matches!(status, "open" | "draft") {
        html.push_str(&format!(
            "<form method=\"post\" action=\"/invoice/{0}/pay\"><button id=\"pay\" type=\"submit\">Pay</button></form>",
            escape(id)
        ));
    }
    if inv["invoice_pdf"].is_string() {
        html.push_str(&format!(
            "<p><a id=\"pdf\" href=\"/invoice/{}/pdf\">Download PDF</a></p>",
            escape(id)
        ));
    }
    page(200, "Invoice", &html)
}

/// The tax rate objects an invoice's taxes name.
fn tax_rates(shared: &Arc<Shared>, inv: &Value) -> Vec<Value> {
    let ids: Vec<String> = inv["total_taxes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t["tax_rate_details"]["tax_rate"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    shared.with_store(|s| ids.iter().filter_map(|id| s.lookup(id).cloned()).collect())
}

fn invoice_pay(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    match control::pay_invoice(shared, id) {
        Ok(_) => redirect(&format!("/invoice/{id}")),
        Err(e) if e.status == 402 => redirect(&format!("/invoice/{id}?declined=1")),
        Err(e) => page(
            e.status,
            "Invoice",
            &format!("<p>{}</p>", escape(&e.message)),
        ),
    }
}

fn invoice_pdf(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let Some(inv) = shared.with_store(|s| s.invoices.get(id).cloned()) else {
        return page(404, "Invoice", "<p>This invoice does not exist.</p>");
    };
    let currency = inv["currency"].as_str().unwrap_or("usd");
    let m = |v: &Value| format_money(v.as_i64().unwrap_or(0), currency);
    let date = |v: &Value| {
        chrono::DateTime::from_timestamp(v.as_i64().unwrap_or(0), 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let mut lines = vec![
        format!("Status: {}", inv["status"].as_str().unwrap_or("")),
        format!("Date: {}", date(&inv["created"])),
        format!(
            "Billed to: {}",
            inv["customer_email"]
                .as_str()
                .unwrap_or(inv["customer"].as_str().unwrap_or(""))
        ),
        format!("Invoice id: {id}"),
        String::new(),
    ];
    for line in inv["lines"]["data"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{}    {}    ({} - {})",
            line["description"].as_str().unwrap_or(""),
            m(&line["amount"]),
            date(&line["period"]["start"]),
            date(&line["period"]["end"]),
        ));
    }
    lines.push(String::new());
    for (label, amount) in page_billing::invoice_summary(&inv, &tax_rates(shared, &inv)) {
        lines.push(format!("{label}: {amount}"));
    }
    lines.push(format!("Total: {}", m(&inv["total"])));
    lines.push(format!("Amount due: {}", m(&inv["amount_due"])));
    lines.push(format!("Amount paid: {}", m(&inv["amount_paid"])));
    let title = format!("Invoice {}", inv["number"].as_str().unwrap_or("(draft)"));
    let mut resp = simple_response(200, "application/pdf", pdf::text_document(&title, &lines));
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "inline; filename=\"{}.pdf\"",
        inv["number"].as_str().unwrap_or(id)
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
