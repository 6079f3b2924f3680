//! The tax and discount parts of the hosted pages: what the Checkout page asks
//! the buyer for (billing address, business name, tax id, promotion code) and
//! how it reads the form back, and the discount and tax rows of an invoice's page
//! and PDF (with the reverse-charge note).

use serde_json::{json, Map, Value};

use crate::objects::money;

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the Checkout form shows besides the Pay button.
pub(crate) struct CheckoutAsks {
    pub address: bool,
    pub name: bool,
    pub tax_id: bool,
    pub promotion_code: bool,
}

const TAX_ID_TYPES: [&str; 7] = [
    "eu_vat", "gb_vat", "ch_vat", "no_vat", "au_abn", "nz_gst", "us_ein",
];

fn input(id: &str, label: &str) -> String {
    format!("<p><label>{label} <input id=\"{id}\" name=\"{id}\" type=\"text\"></label></p>")
}

/// The amounts of an open session and the form's fields.
pub(crate) fn checkout_fields(session: &Value, asks: &CheckoutAsks) -> String {
    let currency = session["currency"].as_str().unwrap_or("usd");
    let m = |v: &Value| escape(&money(v.as_i64().unwrap_or(0), currency));
    let totals = &session["total_details"];
    let mut html = format!(
        "<p>Subtotal: <span id=\"subtotal\">{}</span></p>",
        m(&session["amount_subtotal"])
    );
    if totals["amount_discount"].as_i64().unwrap_or(0) > 0 {
        html.push_str(&format!(
            "<p>Discount: <span id=\"discount\">-{}</span></p>",
            m(&totals["amount_discount"])
        ));
    }
    if session["automatic_tax"]["enabled"] == true {
        let tax = if session["automatic_tax"]["status"] == "complete" {
            m(&totals["amount_tax"])
        } else {
            "calculated from your billing address".to_string()
        };
        html.push_str(&format!("<p>Tax: <span id=\"tax\">{tax}</span></p>"));
    }
    if asks.address {
        html.push_str("<fieldset><legend>Billing address</legend>");
        html.push_str(&input("line1", "Address"));
        html.push_str(&input("city", "City"));
        html.push_str(&input("postal_code", "Postal code"));
        html.push_str(&input("country", "Country (ISO code)"));
        html.push_str("</fieldset>");
    }
    if asks.name {
        html.push_str(&input("name", "Name or business name"));
    }
    if asks.tax_id {
        let options: String = TAX_ID_TYPES
            .iter()
            .map(|t| format!("<option value=\"{t}\">{t}</option>"))
            .collect();
        html.push_str(&format!(
            "<p><label>Tax id type <select id=\"tax_id_type\" name=\"tax_id_type\">{options}</select></label></p>"
        ));
        html.push_str(&input("tax_id_value", "Tax id (optional)"));
    }
    if asks.promotion_code {
        html.push_str(&input("promotion_code", "Promotion code"));
    }
    html
}

/// The buyer's entries as `complete_session_with` details.
pub(crate) fn details_from_form(body: &[u8]) -> Value {
    let mut form = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        let v = v.trim().to_string();
        if !v.is_empty() {
            form.insert(k.into_owned(), Value::String(v));
        }
    }
    let mut details = json!({});
    let address: Map<String, Value> = ["line1", "city", "postal_code", "country"]
        .iter()
        .filter_map(|k| form.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if !address.is_empty() {
        details["address"] = Value::Object(address);
    }
    if let Some(n) = form.get("name") {
        details["name"] = n.clone();
    }
    if let (Some(t), Some(v)) = (form.get("tax_id_type"), form.get("tax_id_value")) {
        details["tax_id"] = json!({ "type": t, "value": v });
    }
    if let Some(c) = form.get("promotion_code") {
        details["promotion_code"] = c.clone();
    }
    details
}

/// `VAT Germany 19%` for a tax entry, from its rate object (if known).
fn tax_label(tax: &Value, rates: &[Value]) -> String {
    let rate_id = tax["tax_rate_details"]["tax_rate"].as_str().unwrap_or("");
    let label = rates
        .iter()
        .find(|r| r["id"] == rate_id)
        .map(|r| {
            format!(
                "{} {}%",
                r["description"].as_str().unwrap_or("Tax"),
                r["percentage"].as_f64().unwrap_or(0.0)
            )
        })
        .unwrap_or_else(|| "Tax".into());
    match tax["taxability_reason"].as_str() {
        Some("reverse_charge") => format!("{label} (reverse charge)"),
        Some("not_collecting") => format!("{label} (not collected)"),
        Some("customer_exempt") => format!("{label} (exempt)"),
        _ => label,
    }
}

/// Text rows after an invoice's lines: subtotal, discount, tax, the
/// reverse-charge note and the customer's tax ids. Empty without discount or tax.
pub(crate) fn invoice_summary(inv: &Value, rates: &[Value]) -> Vec<(String, String)> {
    let currency = inv["currency"].as_str().unwrap_or("usd");
    let m = |a: i64| money(a, currency);
    let discount: i64 = inv["total_discount_amounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["amount"].as_i64())
        .sum();
    let taxes: Vec<&Value> = inv["total_taxes"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if discount == 0 && taxes.is_empty() {
        return Vec::new();
    }
    let mut rows = vec![(
        "Subtotal".to_string(),
        m(inv["subtotal"].as_i64().unwrap_or(0)),
    )];
    if discount > 0 {
        rows.push(("Discount".to_string(), m(-discount)));
    }
    for tax in &taxes {
        rows.push((
            tax_label(tax, rates),
            m(tax["amount"].as_i64().unwrap_or(0)),
        ));
    }
    if taxes
        .iter()
        .any(|t| t["taxability_reason"] == "reverse_charge")
    {
        rows.push((
            "Reverse charge".to_string(),
            "VAT to be accounted for by the recipient".to_string(),
        ));
    }
    for id in inv["customer_tax_ids"].as_array().into_iter().flatten() {
        rows.push((
            format!("Customer tax id ({})", id["type"].as_str().unwrap_or("")),
            id["value"].as_str().unwrap_or("").to_string(),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_to_details() {
        let d = details_from_form(b"country=DE&city=Berlin&line1=&tax_id_type=eu_vat&tax_id_value=DE123456789&promotion_code=");
        assert_eq!(
            d,
            json!({"address": {"country": "DE", "city": "Berlin"},
                   "tax_id": {"type": "eu_vat", "value": "DE123456789"}})
        );
    }

    #[test]
    fn reverse_charge_rows() {
        let inv = json!({"currency": "eur", "subtotal": 2900,
            "total_discount_amounts": [],
            "total_taxes": [{"amount": 0, "taxability_reason": "reverse_charge",
                "tax_rate_details": {"tax_rate": "txr_1"}}],
            "customer_tax_ids": [{"type": "eu_vat", "value": "DE123456789"}]});
        let rates = [json!({"id": "txr_1", "description": "VAT Germany", "percentage": 0.0})];
        let rows = invoice_summary(&inv, &rates);
        assert_eq!(rows[1].0, "VAT Germany 0% (reverse charge)");
        assert_eq!(rows[2].0, "Reverse charge");
        assert_eq!(rows[3].1, "DE123456789");
    }
}
