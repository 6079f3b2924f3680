//! Automatic tax: where a customer is (its address), whether that is a usable tax
//! location, and what the simulated seller charges there.
//!
//! The seller is registered in one country (`SimConfig::seller_country`, default
//! `IE`) and, through the EU One-Stop Shop and foreign registrations, collects
//! tax at the standard rate of every country in `geo`'s table. Per customer:
//!
//! | customer | outcome (`taxability_reason`) |
//! |---|---|
//! | `tax_exempt: exempt` | 0 % (`customer_exempt`) |
//! | `tax_exempt: reverse` | 0 % (`reverse_charge`) |
//! | in the seller's country | the standard rate (`standard_rated`), even with a VAT id |
//! | a business (a VAT/GST id of its country's kind) in another country of the table | 0 % (`reverse_charge`) |
//! | anyone else in a country of the table | the standard rate (`standard_rated`) |
//! | elsewhere (the US, Japan, …) | 0 % (`not_collecting`) |
//!
//! As with Stripe Tax, a business is recognised by the presence of its tax id,
//! whatever the id's verification status. Taxes are exclusive and computed per
//! line on the amount after discounts, rounded half away from zero.
//!
//! A usable location is an address with a known ISO country; in the US a ZIP code
//! and in Canada a postal code are needed too. Asking for automatic tax for a
//! customer without one is Stripe's `customer_tax_location_invalid`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{Ctx, Store, Table};
use crate::config::CurrencyOptionSeed;
use crate::error::ApiError;
use crate::form::Params;
use crate::{geo, ids, objects};

/// The default seller country: an EU seller, so a business in another member
/// state is reverse-charged and a consumer pays its own country's VAT (OSS).
pub const DEFAULT_SELLER_COUNTRY: &str = "IE";

/// Longest address field Stripe accepts.
const MAX_ADDRESS_FIELD: usize = 5000;

const ADDRESS_FIELDS: [&str; 6] = ["line1", "line2", "city", "postal_code", "state", "country"];

/// Tax state: the seller, customer tax ids, the rates automatic tax created.
#[derive(Debug)]
pub(crate) struct TaxState {
    pub seller_country: String,
    pub tax_ids: Table,
    pub rates: Table,
    /// Rate ids by (country, basis points).
    rate_ids: HashMap<(String, i64), String>,
    /// Tax ids whose verification is still pending, with when it settles.
    pub verifications: Vec<(i64, String)>,
}

impl Default for TaxState {
    fn default() -> Self {
        TaxState {
            seller_country: DEFAULT_SELLER_COUNTRY.to_string(),
            tax_ids: Table::default(),
            rates: Table::default(),
            rate_ids: HashMap::new(),
            verifications: Vec::new(),
        }
    }
}

/// Why tax is what it is for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaxDecision {
    pub country: String,
    pub basis_points: i64,
    pub reason: &'static str,
}

/// The checkout message Stripe sends when a customer's address cannot locate it.
pub(crate) fn location_invalid_checkout() -> ApiError {
    ApiError {
        code: Some("customer_tax_location_invalid"),
        ..ApiError::invalid(
            "customer",
            "Automatic tax calculation in Checkout requires a valid address on the Customer. \
             Add a valid address to the Customer or set either `customer_update[address]` to \
             'auto' or `customer_update[shipping]` to 'auto' to save the address entered in \
             Checkout to the Customer.",
        )
    }
}

/// The subscription and invoice message for the same problem.
pub(crate) fn location_invalid() -> ApiError {
    ApiError {
        code: Some("customer_tax_location_invalid"),
        ..ApiError::invalid(
            "customer",
            "The customer's location isn't recognized. Set a valid customer address in order \
             to automatically calculate tax.",
        )
    }
}

/// Parses `key` (`address`) as Stripe does: absent → `None`; `""` → clear
/// (`Some(Value::Null)`); a hash → the whole address, every field present.
pub(crate) fn parse_address(p: Params<'_>, key: &str) -> Result<Option<Value>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(Value::Null)),
        Some(Value::Object(map)) => {
            for k in map.keys() {
                if !ADDRESS_FIELDS.contains(&k.as_str()) {
                    return Err(ApiError::invalid(
                        format!("{key}[{k}]"),
                        format!("Received unknown parameter: {key}[{k}]"),
                    ));
                }
            }
            let a = p.child(key);
            let mut fields: Vec<Option<String>> = Vec::with_capacity(6);
            for field in ADDRESS_FIELDS {
                let v = a.nullable_str(field)?.flatten();
                if let Some(s) = &v {
                    if s.chars().count() > MAX_ADDRESS_FIELD {
                        return Err(ApiError::invalid(
                            format!("{key}[{field}]"),
                            format!(
                                "Invalid string: must be at most {MAX_ADDRESS_FIELD} characters"
                            ),
                        ));
                    }
                }
                fields.push(v);
            }
            let country = fields[5].as_ref().map(|c| c.to_ascii_uppercase());
            if let Some(c) = &country {
                if !geo::is_country(c) {
                    return Err(ApiError::invalid(
                        format!("{key}[country]"),
                        format!(
                            "Country '{c}' is unknown. Try using a 2-character alphanumeric country \
                             code instead, such as 'US', 'EG', or 'GB'. A full list of country codes \
                             is available at https://www.iso.org/iso-3166-country-codes.html"
                        ),
                    ));
                }
            }
            Ok(Some(objects::address(
                fields[0].as_deref(),
                fields[1].as_deref(),
                fields[2].as_deref(),
                fields[3].as_deref(),
                fields[4].as_deref(),
                country.as_deref(),
            )))
        }
        Some(_) => Err(ApiError::invalid(key, "Invalid hash")),
    }
}

/// `tax_exempt` (`none`, `exempt`, `reverse`), if sent.
pub(crate) fn parse_tax_exempt(p: Params<'_>) -> Result<Option<String>, ApiError> {
    match p.str("tax_exempt")? {
        None => Ok(None),
        Some(t) if matches!(t.as_str(), "none" | "exempt" | "reverse") => Ok(Some(t)),
        Some(t) => Err(ApiError::invalid(
            "tax_exempt",
            format!("Invalid tax_exempt: must be one of exempt, none, or reverse (got {t})"),
        )),
    }
}

/// The tax country of an address, if Stripe Tax could locate it.
pub(crate) fn tax_location(address: &Value) -> Option<String> {
    let country = address["country"].as_str()?;
    if !geo::is_country(country) {
        return None;
    }
    let postal = address["postal_code"].as_str().unwrap_or("").trim();
    let ok = match country {
        "US" => {
            let digits: Vec<&str> = postal.split('-').collect();
            matches!(digits.as_slice(), [zip] | [zip, _] if zip.len() == 5 && zip.bytes().all(|b| b.is_ascii_digit()))
                && digits.get(1).is_none_or(|plus4| {
                    plus4.len() == 4 && plus4.bytes().all(|b| b.is_ascii_digit())
                })
        }
        "CA" => postal.chars().filter(|c| c.is_ascii_alphanumeric()).count() == 6,
        _ => true,
    };
    ok.then(|| country.to_string())
}

/// The tax id types that make a customer of `country` a business for VAT/GST.
fn business_id_types(country: &str) -> &'static [&'static str] {
    match country {
        c if geo::is_eu(c) => &["eu_vat"],
        "GB" => &["gb_vat"],
        "CH" => &["ch_vat"],
        "NO" => &["no_vat"],
        "AU" => &["au_abn"],
        "NZ" => &["nz_gst"],
        _ => &[],
    }
}

impl Store {
    /// The seller's country and the seeded prices' other currencies (start-up
    /// and reset).
    pub(crate) fn configure_tax(
        &mut self,
        seller_country: &str,
        currency_options: &[CurrencyOptionSeed],
    ) {
        self.tax.seller_country = seller_country.to_ascii_uppercase();
        self.seed_currency_options(currency_options);
    }

    /// The customer's usable tax country (`None`: no or an unusable address).
    pub(crate) fn customer_tax_country(&self, customer: &str) -> Option<String> {
        self.customers
            .get(customer)
            .and_then(|c| tax_location(&c["address"]))
    }

    /// What automatic tax charges `customer`; `None` when it cannot be located.
    pub(crate) fn tax_decision(&self, customer: &str) -> Option<TaxDecision> {
        let cust = self.customers.get(customer)?;
        let country = tax_location(&cust["address"])?;
        let seller = self.tax.seller_country.as_str();
        let standard = geo::standard_rate(&country);
        let business = {
            let kinds = business_id_types(&country);
            self.tax
                .tax_ids
                .iter_newest()
                .any(|e| e.obj["customer"] == customer && kinds.iter().any(|k| e.obj["type"] == *k))
        };
        let (basis_points, reason) = match cust["tax_exempt"].as_str() {
            Some("exempt") => (0, "customer_exempt"),
            Some("reverse") => (0, "reverse_charge"),
            _ => match standard {
                None => (0, "not_collecting"),
                Some((bp, _)) if country == seller => (bp, "standard_rated"),
                Some(_) if business => (0, "reverse_charge"),
                Some((bp, _)) => (bp, "standard_rated"),
            },
        };
        Some(TaxDecision {
            country,
            basis_points,
            reason,
        })
    }

    /// The id of the (automatic) tax rate for a decision, created on first use.
    pub(crate) fn tax_rate_for(&mut self, ctx: &Ctx, d: &TaxDecision) -> String {
        let key = (d.country.clone(), d.basis_points);
        if let Some(id) = self.tax.rate_ids.get(&key) {
            return id.clone();
        }
        let id = ids::object_id("txr_");
        let name = geo::tax_name(&d.country);
        let description = format!("{name} {}", geo::country_name(&d.country));
        let rate = objects::tax_rate(
            &id,
            ctx.now,
            &d.country,
            geo::percentage(d.basis_points),
            name,
            &description,
        );
        self.tax.rates.insert(id.clone(), rate, i64::MIN);
        self.tax.rate_ids.insert(key, id.clone());
        id
    }

    /// The customer's `tax` hash (shown with `expand[]=tax`).
    pub(crate) fn customer_tax_hash(&self, customer: &Value) -> Value {
        let location = tax_location(&customer["address"]);
        let status = match &location {
            None => "unrecognized_location",
            Some(c) if geo::standard_rate(c).is_some() => "supported",
            Some(_) => "not_collecting",
        };
        json!({
            "automatic_tax": status,
            "ip_address": null,
            "location": location.map(|c| json!({ "country": c, "source": "billing_address", "state": null })),
            "provider": "stripe"
        })
    }

    pub fn retrieve_tax_rate(&self, id: &str) -> Result<&Value, ApiError> {
        self.tax
            .rates
            .get(id)
            .ok_or_else(|| ApiError::no_such("tax_rate", id))
    }

    pub fn list_tax_rates(&self, p: Params<'_>) -> Result<Value, ApiError> {
        super::paginate(&self.tax.rates, p, "/v1/tax_rates", "tax_rate", |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let de = objects::address(None, None, None, None, None, Some("DE"));
        assert_eq!(tax_location(&de).as_deref(), Some("DE"));
        let us = objects::address(None, None, None, None, None, Some("US"));
        assert_eq!(tax_location(&us), None, "a US address needs a ZIP code");
        let us = objects::address(None, None, None, Some("94107"), None, Some("US"));
        assert_eq!(tax_location(&us).as_deref(), Some("US"));
        let us = objects::address(None, None, None, Some("94107-1234"), None, Some("US"));
        assert_eq!(tax_location(&us).as_deref(), Some("US"));
        assert_eq!(tax_location(&Value::Null), None);
    }

    #[test]
    fn parses_addresses() {
        let v = json!({"address": {"country": "de", "city": "Berlin"}});
        let a = parse_address(Params(&v), "address").unwrap().unwrap();
        assert_eq!(a["country"], "DE");
        assert_eq!(a["line1"], Value::Null);
        let v = json!({"address": {"country": "XX"}});
        let e = parse_address(Params(&v), "address").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("address[country]"));
        let v = json!({"address": ""});
        assert_eq!(
            parse_address(Params(&v), "address").unwrap(),
            Some(Value::Null)
        );
        let v = json!({"address": {"city": "x".repeat(5001)}});
        assert!(parse_address(Params(&v), "address").is_err());
    }
}
