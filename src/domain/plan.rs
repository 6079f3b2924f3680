//! The plan catalog: which plans exist, what each grants, and how they rank.
//!
//! Built once from configuration (`[plans.*]`) and validated then, so code
//! below the HTTP layer can look plans up without re-checking anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::usage::{Allowance, Meter, Overage};

/// The plan of a tenant without a paying subscription; always in the catalog.
pub const FREE: &str = "free";

/// A plan code that exists in the catalog. Construct it only through
/// `PlanCatalog::parse`, so an unknown plan is rejected at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCode(String);

impl PlanCode {
    pub fn is_free(&self) -> bool {
        self.0 == FREE
    }
}

validated_text!(PlanCode);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not a plan offered by this service")]
pub struct UnknownPlan;

/// A price as shown to users: Stripe's when known, else the configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPrice {
    pub amount: i64,
    pub currency: String,
    pub interval: String,
}

/// One sellable plan (or `free`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Absent only for `free`.
    pub price_id: Option<String>,
    /// Higher is an upgrade.
    pub rank: i64,
    /// 0 = no trial.
    pub trial_days: u32,
    /// Billed per seat (the subscription item's quantity).
    pub per_seat: bool,
    pub features: Vec<String>,
    /// `seats` is the most seats a per-seat plan may have; a meter's id is
    /// that meter's limit per period (absent: unlimited; 0: not included).
    pub limits: BTreeMap<String, i64>,
    /// What happens to usage past a meter's limit.
    pub overage: Overage,
    /// The configured price, shown until Stripe's has been read.
    pub configured_price: Option<PlanPrice>,
    /// A price of its own per other currency (`prices = { eur = "price_…" }`).
    pub prices: BTreeMap<String, String>,
    /// Configured amounts in other currencies (the `prices`' or the main
    /// price's `currency_options`): they seed the in-process simulator and are
    /// shown until Stripe's have been read.
    pub currency_amounts: BTreeMap<String, i64>,
    /// Meter id → the metered Stripe price that bills its usage on this plan
    /// (a subscription item beside the plan's price).
    pub metered_prices: BTreeMap<String, String>,
    /// Meter id → cents per unit: seeds the in-process simulator's metered
    /// price (Stripe's price is the truth).
    pub metered_unit_amounts: BTreeMap<String, i64>,
}

impl Plan {
    /// The most seats this plan allows, if it limits them.
    pub fn max_seats(&self) -> Option<i64> {
        self.limits.get("seats").copied()
    }

    /// This plan's rule for `meter`.
    pub fn allowance(&self, meter: &str) -> Allowance {
        Allowance {
            limit: self.limits.get(meter).copied(),
            overage: self.overage,
        }
    }

    /// A plan with this id and nothing else (free's defaults).
    pub fn bare(id: &str, name: &str) -> Plan {
        Plan {
            id: id.to_owned(),
            name: name.to_owned(),
            price_id: None,
            rank: 0,
            trial_days: 0,
            per_seat: false,
            features: Vec::new(),
            limits: BTreeMap::new(),
            overage: Overage::Block,
            configured_price: None,
            prices: BTreeMap::new(),
            currency_amounts: BTreeMap::new(),
            metered_prices: BTreeMap::new(),
            metered_unit_amounts: BTreeMap::new(),
        }
    }

    /// Every price id the plan is sold at: the main one, then one per
    /// other currency.
    pub fn price_ids(&self) -> impl Iterator<Item = &String> {
        self.price_id.iter().chain(self.prices.values())
    }

    /// The metered prices this plan's subscription carries, in meter order.
    pub fn metered_price_ids(&self) -> Vec<String> {
        self.metered_prices.values().cloned().collect()
    }
}

/// How moving from one plan to another counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange {
    Current,
    Upgrade,
    Downgrade,
}

impl PlanChange {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanChange::Current => "current",
            PlanChange::Upgrade => "upgrade",
            PlanChange::Downgrade => "downgrade",
        }
    }
}

/// Why a catalog was refused: the plan, the key and the problem (never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{section}.{plan}.{key} {problem}")]
pub struct CatalogError {
    /// `plans` or `meters`.
    pub section: &'static str,
    /// The plan's or the meter's id.
    pub plan: String,
    pub key: &'static str,
    pub problem: &'static str,
}

/// Every configured plan, ordered by rank, with lookups by id and price.
/// Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct PlanCatalog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    plans: Vec<Plan>,
    by_id: HashMap<String, usize>,
    by_price: HashMap<String, usize>,
    /// By id; the order the page and the API list them in.
    meters: Vec<Meter>,
}

impl Default for PlanCatalog {
    /// Only `free`: what a service without `[plans]` sells.
    fn default() -> Self {
        PlanCatalog::new(Vec::new()).expect("free alone is a valid catalog")
    }
}

impl PlanCatalog {
    /// Validates `plans` (adding `free` with its defaults when absent).
    pub fn new(plans: Vec<Plan>) -> Result<PlanCatalog, CatalogError> {
        PlanCatalog::with_meters(plans, Vec::new())
    }

    /// Validates `plans` and the `meters` their limits may name.
    pub fn with_meters(
        mut plans: Vec<Plan>,
        mut meters: Vec<Meter>,
    ) -> Result<PlanCatalog, CatalogError> {
        if !plans.iter().any(|p| p.id == FREE) {
            plans.push(Plan::bare(FREE, "Free"));
        }
        plans.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.id.cmp(&b.id)));
        let error = |plan: &Plan, key, problem| CatalogError {
            section: "plans",
            plan: plan.id.clone(),
            key,
            problem,
        };
        let free_rank = plans.iter().find(|p| p.id == FREE).map(|p| p.rank);
        let mut by_id = HashMap::new();
        let mut by_price = HashMap::new();
        for (index, plan) in plans.iter().enumerate() {
            let well_formed = (1..=64).contains(&plan.id.len())
                && plan.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !well_formed {
                return Err(error(
                    plan,
                    "id",
                    "must be 1-64 characters of a-z, 0-9, '_' and '-'",
                ));
            }
            if plan.name.trim().is_empty() {
                return Err(error(plan, "name", "must not be empty"));
            }
            match (&plan.price_id, plan.id == FREE) {
                (Some(_), true) => {
                    return Err(error(plan, "price_id", "must be absent: free has no price"))
                }
                (None, false) => return Err(error(plan, "price_id", "is required")),
                (Some(_), false) => {
                    for price in plan.price_ids() {
                        if by_price.insert(price.clone(), index).is_some() {
                            return Err(error(plan, "price_id", "is already another plan's price"));
                        }
                    }
                }
                (None, true) => {}
            }
            if plan.id != FREE && Some(plan.rank) <= free_rank {
                return Err(error(plan, "rank", "must be higher than free's rank"));
            }
            if index > 0 && plans[index - 1].rank == plan.rank {
                return Err(error(
                    plan,
                    "rank",
                    "is another plan's rank (ranks order upgrades)",
                ));
            }
            if plan.id == FREE && (plan.trial_days > 0 || plan.per_seat) {
                return Err(error(
                    plan,
                    "trial_days",
                    "and per_seat do not apply to free",
                ));
            }
            if plan.max_seats().is_some_and(|seats| seats < 1) {
                return Err(error(plan, "limits", "seats must be at least 1"));
            }
            let currency = |c: &String| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase());
            if !plan.prices.keys().all(currency) || !plan.currency_amounts.keys().all(currency) {
                return Err(error(
                    plan,
                    "prices",
                    "keys must be lower-case ISO 4217 currency codes (eur, usd)",
                ));
            }
            if meters
                .iter()
                .any(|meter| plan.limits.get(&meter.id).is_some_and(|limit| *limit < 0))
            {
                return Err(error(plan, "limits", "a meter's limit must be 0 or more"));
            }
            if plan.id == FREE && !plan.metered_prices.is_empty() {
                return Err(error(
                    plan,
                    "metered_prices",
                    "must be empty: free has no subscription to bill usage on",
                ));
            }
            for (meter_id, price) in &plan.metered_prices {
                let billed = meters
                    .iter()
                    .any(|m| &m.id == meter_id && m.stripe_meter.is_some());
                if !billed {
                    return Err(error(
                        plan,
                        "metered_prices",
                        "names a meter without stripe_meter (or no meter at all)",
                    ));
                }
                if price.trim().is_empty()
                    || plans.iter().any(|p| p.price_id.as_ref() == Some(price))
                {
                    return Err(error(
                        plan,
                        "metered_prices",
                        "must name metered prices, none of them a plan's price_id",
                    ));
                }
            }
            by_id.insert(plan.id.clone(), index);
        }
        meters.sort_by(|a, b| a.id.cmp(&b.id));
        for meter in &meters {
            let meter_error = |key, problem| CatalogError {
                section: "meters",
                plan: meter.id.clone(),
                key,
                problem,
            };
            let well_formed = (1..=64).contains(&meter.id.len())
                && meter.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !well_formed || meter.id == "seats" {
                return Err(meter_error(
                    "id",
                    "must be 1-64 characters of a-z, 0-9, '_' and '-', and not seats",
                ));
            }
            if meter.name.trim().is_empty() {
                return Err(meter_error("name", "must not be empty"));
            }
            let stripe_ok = meter
                .stripe_meter
                .as_ref()
                .is_none_or(|name| (1..=100).contains(&name.len()));
            if !stripe_ok {
                return Err(meter_error(
                    "stripe_meter",
                    "must be a Stripe meter's event_name (1-100 characters)",
                ));
            }
        }
        Ok(PlanCatalog {
            inner: Arc::new(Inner {
                plans,
                by_id,
                by_price,
                meters,
            }),
        })
    }

    /// Every meter, by id.
    pub fn meters(&self) -> &[Meter] {
        &self.inner.meters
    }

    pub fn meter(&self, id: &str) -> Option<&Meter> {
        self.inner.meters.iter().find(|meter| meter.id == id)
    }

    /// The meters whose usage is forwarded to a Stripe meter.
    pub fn billed_meters(&self) -> impl Iterator<Item = &Meter> + '_ {
        self.inner
            .meters
            .iter()
            .filter(|meter| meter.stripe_meter.is_some())
    }

    /// The meter a metered price bills, if a plan configures it.
    pub fn meter_of_metered_price(&self, price_id: &str) -> Option<&str> {
        self.inner.plans.iter().find_map(|plan| {
            plan.metered_prices
                .iter()
                .find(|(_, price)| price.as_str() == price_id)
                .map(|(meter, _)| meter.as_str())
        })
    }

    /// Every plan, lowest rank first (free first).
    pub fn plans(&self) -> &[Plan] {
        &self.inner.plans
    }

    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.inner.by_id.get(id).map(|&i| &self.inner.plans[i])
    }

    pub fn free(&self) -> &Plan {
        self.get(FREE).expect("the catalog always holds free")
    }

    /// The plan sold at `price_id`, if any is configured with it.
    pub fn by_price(&self, price_id: &str) -> Option<&Plan> {
        self.inner
            .by_price
            .get(price_id)
            .map(|&i| &self.inner.plans[i])
    }

    /// Accepts exactly the configured plan ids (free included).
    pub fn parse(&self, value: &str) -> Result<PlanCode, UnknownPlan> {
        self.get(value)
            .map(|plan| PlanCode(plan.id.clone()))
            .ok_or(UnknownPlan)
    }

    /// What moving from `from` to `to` is, by rank. A current plan the
    /// catalog does not know (a price only Stripe knows) ranks above free and
    /// below every configured paid plan: leaving it for a paid plan is an
    /// upgrade (at once), for free a downgrade.
    pub fn change(&self, from: &str, to: &str) -> PlanChange {
        if from == to {
            return PlanChange::Current;
        }
        let rank = |id: &str| match self.get(id) {
            Some(plan) => (plan.rank, 0),
            None => (self.free().rank, 1),
        };
        if rank(to) > rank(from) {
            PlanChange::Upgrade
        } else {
            PlanChange::Downgrade
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(id: &str, rank: i64, price: &str) -> Plan {
        Plan {
            price_id: Some(price.into()),
            rank,
            ..Plan::bare(id, id)
        }
    }

    fn shipped() -> PlanCatalog {
        PlanCatalog::new(vec![
            paid("team", 20, "price_team"),
            paid("pro", 10, "price_pro"),
        ])
        .unwrap()
    }

    #[test]
    fn free_is_always_there_and_plans_are_ordered_by_rank() {
        let catalog = shipped();
        let ids: Vec<&str> = catalog.plans().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["free", "pro", "team"]);
        assert!(catalog.free().features.is_empty());
        assert_eq!(catalog.by_price("price_team").unwrap().id, "team");
        assert!(catalog.by_price("price_legacy").is_none());
    }

    #[test]
    fn only_configured_plans_parse() {
        let catalog = shipped();
        assert!(catalog.parse("pro").is_ok());
        assert!(catalog.parse("free").unwrap().is_free());
        assert!(catalog.parse("enterprise").is_err());
        assert!(catalog.parse("PRO").is_err());
    }

    #[test]
    fn changes_follow_rank() {
        let catalog = shipped();
        assert_eq!(catalog.change("pro", "team"), PlanChange::Upgrade);
        assert_eq!(catalog.change("team", "pro"), PlanChange::Downgrade);
        assert_eq!(catalog.change("team", "team"), PlanChange::Current);
        assert_eq!(catalog.change("free", "pro"), PlanChange::Upgrade);
        assert_eq!(catalog.change("pro", "free"), PlanChange::Downgrade);
        // A price only Stripe knows sits between free and the paid plans.
        assert_eq!(catalog.change("price_legacy", "pro"), PlanChange::Upgrade);
        assert_eq!(
            catalog.change("price_legacy", "free"),
            PlanChange::Downgrade
        );
    }

    #[test]
    fn inconsistent_catalogs_are_refused() {
        let cases = [
            (vec![paid("pro", 10, "p"), paid("team", 10, "t")], "rank"),
            (
                vec![paid("pro", 10, "p"), paid("team", 20, "p")],
                "price_id",
            ),
            (vec![paid("pro", 0, "p")], "rank"),
            (vec![paid("Pro", 10, "p")], "id"),
            (vec![Plan::bare("pro", "Pro")], "price_id"),
            (vec![paid("free", 0, "p")], "price_id"),
        ];
        for (plans, key) in cases {
            let error = PlanCatalog::new(plans).unwrap_err();
            assert_eq!(error.key, key, "{error}");
        }
        let mut zero_seats = paid("team", 20, "t");
        zero_seats.limits.insert("seats".into(), 0);
        assert_eq!(
            PlanCatalog::new(vec![zero_seats]).unwrap_err().key,
            "limits"
        );
    }
}
