//! Start-up configuration of a simulator instance (library and command line share it).

use std::str::FromStr;

/// Everything a simulator needs to start. `Default` is what tests usually want:
/// an ephemeral port, no webhook endpoint, no latency, no search lag, no rate limit.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one (read it back with `SimHandle::port`).
    pub port: u16,
    /// Where events are POSTed; `None` keeps them only for `GET /v1/events`.
    pub webhook_url: Option<String>,
    /// Shared secret for the `Stripe-Signature` header.
    pub webhook_secret: String,
    /// Added to every `/v1` request (async sleep) to imitate network and Stripe latency.
    pub latency_ms: u64,
    /// How long (simulator time) a new object stays invisible to `/search`.
    pub search_lag_ms: u64,
    /// Requests per second allowed on `/v1` (token bucket); `None` disables the limit.
    pub rate_limit: Option<u32>,
    /// Prices (and their products) that exist from the start and after every reset.
    pub prices: Vec<PriceSeed>,
    /// First webhook retry waits this long; every further retry doubles it (capped).
    pub webhook_retry_base_ms: u64,
    /// What happens to a subscription once the last automatic retry of its invoice
    /// has failed (Stripe's "if all retries for a payment fail" setting).
    pub after_failed_payments: FailedPaymentAction,
    /// Where simulator time starts (Unix seconds); `None` is now. Like a
    /// Stripe test clock's `frozen_time`, it may be in the past, so a test can
    /// create a subscription whose period ends about now.
    pub clock_start: Option<i64>,
    /// The country the simulated seller is established in (automatic tax: a
    /// customer there always pays its VAT; see the README). ISO code, default `IE`.
    pub seller_country: String,
    /// Amounts in other currencies for seeded prices (`currency_options`).
    pub price_currency_options: Vec<CurrencyOptionSeed>,
    /// Metered prices (and their meters) that exist from the start and after every reset.
    pub metered_prices: Vec<MeteredPriceSeed>,
    /// How long after a period's end a renewal invoice that bills usage stays
    /// draft before it is finalized (Stripe's grace period; one hour by default).
    pub invoice_grace_seconds: u64,
}

/// The subscription's fate after the last failed payment retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailedPaymentAction {
    /// Cancel the subscription (`customer.subscription.deleted`), Stripe's default.
    #[default]
    Cancel,
    /// Keep it, marked `unpaid` (`customer.subscription.updated`).
    Unpaid,
}

impl FailedPaymentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FailedPaymentAction::Cancel => "cancel",
            FailedPaymentAction::Unpaid => "unpaid",
        }
    }
}

impl FromStr for FailedPaymentAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cancel" => Ok(FailedPaymentAction::Cancel),
            "unpaid" => Ok(FailedPaymentAction::Unpaid),
            other => Err(format!("`{other}` is not cancel|unpaid")),
        }
    }
}

/// Default webhook secret; only meaningful against this simulator.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_stripe_sim_development";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            webhook_url: None,
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_string(),
            latency_ms: 0,
            search_lag_ms: 0,
            rate_limit: None,
            prices: Vec::new(),
            webhook_retry_base_ms: 500,
            after_failed_payments: FailedPaymentAction::Cancel,
            clock_start: None,
            seller_country: crate::store::DEFAULT_SELLER_COUNTRY.to_string(),
            price_currency_options: Vec::new(),
            metered_prices: Vec::new(),
            invoice_grace_seconds: 3600,
        }
    }
}

/// A price planted at start-up, written `ID:AMOUNT:CURRENCY:INTERVAL` on the command
/// line (e.g. `price_pro:2500:usd:month`). `INTERVAL` is `day|week|month|year`, or
/// `one_time` for a non-recurring price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSeed {
    pub id: String,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: String,
}

impl FromStr for PriceSeed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [id, amount, currency, interval] = parts.as_slice() else {
            return Err(format!("price `{s}` is not ID:AMOUNT:CURRENCY:INTERVAL"));
        };
        if id.is_empty() {
            return Err(format!("price `{s}` has an empty id"));
        }
        let unit_amount: i64 = amount
            .parse()
            .map_err(|_| format!("price `{s}`: amount `{amount}` is not an integer"))?;
        if unit_amount < 0 {
            return Err(format!("price `{s}`: amount must not be negative"));
        }
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "price `{s}`: currency `{currency}` is not a 3-letter code"
            ));
        }
        if !matches!(*interval, "day" | "week" | "month" | "year" | "one_time") {
            return Err(format!(
                "price `{s}`: interval `{interval}` is not day|week|month|year|one_time"
            ));
        }
        Ok(PriceSeed {
            id: id.to_string(),
            unit_amount,
            currency: currency.to_ascii_lowercase(),
            interval: interval.to_string(),
        })
    }
}

/// A metered price planted at start-up with its meter, written
/// `ID:AMOUNT:CURRENCY:INTERVAL:EVENT_NAME[:INCLUDED]` (e.g.
/// `price_api_calls:2:usd:month:api_calls:1000`): the meter `mtr_EVENT_NAME` sums the
/// events named `EVENT_NAME` (one meter per event name, shared by the prices that name
/// it), `AMOUNT` is per unit of usage, and the first `INCLUDED` units of a period are
/// free (graduated tiers: `up_to INCLUDED` at 0, then `AMOUNT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredPriceSeed {
    pub price: PriceSeed,
    pub event_name: String,
    /// Units per period billed at 0 (0: a plain per-unit price).
    pub included: u64,
}

impl FromStr for MeteredPriceSeed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let (price, event_name, included) = match parts.as_slice() {
            [a, b, c, d, e] => ([*a, *b, *c, *d].join(":"), *e, 0),
            [a, b, c, d, e, n] => (
                [*a, *b, *c, *d].join(":"),
                *e,
                n.parse::<u64>().map_err(|_| {
                    format!("metered price `{s}`: included units `{n}` is not an integer")
                })?,
            ),
            _ => {
                return Err(format!(
                    "metered price `{s}` is not ID:AMOUNT:CURRENCY:INTERVAL:EVENT_NAME[:INCLUDED]"
                ))
            }
        };
        let price: PriceSeed = price.parse()?;
        if matches!(price.interval.as_str(), "one_time") {
            return Err(format!("metered price `{s}` must be recurring"));
        }
        if event_name.is_empty() || event_name.len() > 100 {
            return Err(format!(
                "metered price `{s}`: the event name must be 1 to 100 characters"
            ));
        }
        Ok(MeteredPriceSeed {
            price,
            event_name: event_name.to_string(),
            included,
        })
    }
}

/// An amount in another currency for a seeded price, written `ID:CURRENCY:AMOUNT`
/// on the command line (e.g. `price_pro:eur:2700`): the price's
/// `currency_options[CURRENCY][unit_amount]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyOptionSeed {
    pub price: String,
    pub currency: String,
    pub unit_amount: i64,
}

impl FromStr for CurrencyOptionSeed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [price, currency, amount] = parts.as_slice() else {
            return Err(format!(
                "currency option `{s}` is not PRICE_ID:CURRENCY:AMOUNT"
            ));
        };
        if price.is_empty() {
            return Err(format!("currency option `{s}` has an empty price id"));
        }
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "currency option `{s}`: currency `{currency}` is not a 3-letter code"
            ));
        }
        let unit_amount: i64 = amount.parse().ok().filter(|a| *a >= 0).ok_or_else(|| {
            format!("currency option `{s}`: amount `{amount}` is not a whole number of cents")
        })?;
        Ok(CurrencyOptionSeed {
            price: price.to_string(),
            currency: currency.to_ascii_lowercase(),
            unit_amount,
        })
    }
}

/// Checks a seller country (`--seller-country`, `SimConfig::seller_country`).
pub fn parse_seller_country(s: &str) -> Result<String, String> {
    let c = s.to_ascii_uppercase();
    if crate::geo::is_country(&c) {
        Ok(c)
    } else {
        Err(format!("`{s}` is not an ISO 3166-1 alpha-2 country code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_price_seed() {
        let p: PriceSeed = "price_pro:2500:USD:month".parse().unwrap();
        assert_eq!(p.id, "price_pro");
        assert_eq!(p.unit_amount, 2500);
        assert_eq!(p.currency, "usd");
        assert_eq!(p.interval, "month");
        assert!("price_pro:25.00:usd:month".parse::<PriceSeed>().is_err());
        assert!("price_pro:2500:usd".parse::<PriceSeed>().is_err());
        assert!("price_pro:2500:usd:fortnight".parse::<PriceSeed>().is_err());
    }

    #[test]
    fn parses_currency_options_and_countries() {
        let o: CurrencyOptionSeed = "price_pro:EUR:2700".parse().unwrap();
        assert_eq!(
            (o.price.as_str(), o.currency.as_str(), o.unit_amount),
            ("price_pro", "eur", 2700)
        );
        assert!("price_pro:eur".parse::<CurrencyOptionSeed>().is_err());
        assert!("price_pro:euro:1".parse::<CurrencyOptionSeed>().is_err());
        assert!("price_pro:eur:-1".parse::<CurrencyOptionSeed>().is_err());
        assert_eq!(parse_seller_country("de"), Ok("DE".into()));
        assert!(parse_seller_country("EU").is_err());
    }

    #[test]
    fn parses_failed_payment_action() {
        assert_eq!(
            "unpaid".parse::<FailedPaymentAction>(),
            Ok(FailedPaymentAction::Unpaid)
        );
        assert_eq!(
            "cancel".parse::<FailedPaymentAction>(),
            Ok(FailedPaymentAction::Cancel)
        );
        assert!("void".parse::<FailedPaymentAction>().is_err());
    }
}
