//! `/v1` routing: which endpoint a method and path name, and its path template (the
//! key for statistics and fault matching).

use hyper::Method;

macro_rules! endpoints {
    ($($name:ident => $key:literal),* $(,)?) => {
        /// Every `/v1` endpoint the simulator answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Endpoint { $($name),* }

        impl Endpoint {
            pub(crate) const ALL: &'static [Endpoint] = &[$(Endpoint::$name),*];

            /// `"METHOD /v1/template"`, as shown in `GET /_sim/stats`.
            pub(crate) fn key(self) -> &'static str {
                match self { $(Endpoint::$name => $key),* }
            }
        }
    };
}

endpoints! {
    CustomerCreate => "POST /v1/customers",
    CustomerList => "GET /v1/customers",
    CustomerSearch => "GET /v1/customers/search",
    CustomerRetrieve => "GET /v1/customers/{id}",
    CustomerUpdate => "POST /v1/customers/{id}",
    CustomerDelete => "DELETE /v1/customers/{id}",
    ProductCreate => "POST /v1/products",
    ProductList => "GET /v1/products",
    ProductRetrieve => "GET /v1/products/{id}",
    PriceCreate => "POST /v1/prices",
    PriceList => "GET /v1/prices",
    PriceRetrieve => "GET /v1/prices/{id}",
    PriceUpdate => "POST /v1/prices/{id}",
    SessionCreate => "POST /v1/checkout/sessions",
    SessionList => "GET /v1/checkout/sessions",
    SessionRetrieve => "GET /v1/checkout/sessions/{id}",
    SessionExpire => "POST /v1/checkout/sessions/{id}/expire",
    SubscriptionCreate => "POST /v1/subscriptions",
    SubscriptionList => "GET /v1/subscriptions",
    SubscriptionRetrieve => "GET /v1/subscriptions/{id}",
    SubscriptionUpdate => "POST /v1/subscriptions/{id}",
    SubscriptionCancel => "DELETE /v1/subscriptions/{id}",
    InvoiceList => "GET /v1/invoices",
    InvoiceRetrieve => "GET /v1/invoices/{id}",
    InvoicePay => "POST /v1/invoices/{id}/pay",
    ScheduleCreate => "POST /v1/subscription_schedules",
    ScheduleList => "GET /v1/subscription_schedules",
    ScheduleRetrieve => "GET /v1/subscription_schedules/{id}",
    ScheduleUpdate => "POST /v1/subscription_schedules/{id}",
    ScheduleRelease => "POST /v1/subscription_schedules/{id}/release",
    ScheduleCancel => "POST /v1/subscription_schedules/{id}/cancel",
    PortalSessionCreate => "POST /v1/billing_portal/sessions",
    MeterCreate => "POST /v1/billing/meters",
    MeterList => "GET /v1/billing/meters",
    MeterRetrieve => "GET /v1/billing/meters/{id}",
    MeterUpdate => "POST /v1/billing/meters/{id}",
    MeterDeactivate => "POST /v1/billing/meters/{id}/deactivate",
    MeterReactivate => "POST /v1/billing/meters/{id}/reactivate",
    MeterEventSummaryList => "GET /v1/billing/meters/{id}/event_summaries",
    MeterEventCreate => "POST /v1/billing/meter_events",
    MeterEventAdjustmentCreate => "POST /v1/billing/meter_event_adjustments",
    EventList => "GET /v1/events",
    EventRetrieve => "GET /v1/events/{id}",
    CustomerTaxIdCreate => "POST /v1/customers/{id}/tax_ids",
    CustomerTaxIdList => "GET /v1/customers/{id}/tax_ids",
    CustomerTaxIdRetrieve => "GET /v1/customers/{id}/tax_ids/{tax_id}",
    CustomerTaxIdDelete => "DELETE /v1/customers/{id}/tax_ids/{tax_id}",
    TaxIdCreate => "POST /v1/tax_ids",
    TaxIdList => "GET /v1/tax_ids",
    TaxIdRetrieve => "GET /v1/tax_ids/{id}",
    TaxIdDelete => "DELETE /v1/tax_ids/{id}",
    TaxRateList => "GET /v1/tax_rates",
    TaxRateRetrieve => "GET /v1/tax_rates/{id}",
    CouponCreate => "POST /v1/coupons",
    CouponList => "GET /v1/coupons",
    CouponRetrieve => "GET /v1/coupons/{id}",
    CouponUpdate => "POST /v1/coupons/{id}",
    CouponDelete => "DELETE /v1/coupons/{id}",
    PromotionCodeCreate => "POST /v1/promotion_codes",
    PromotionCodeList => "GET /v1/promotion_codes",
    PromotionCodeRetrieve => "GET /v1/promotion_codes/{id}",
    PromotionCodeUpdate => "POST /v1/promotion_codes/{id}",
    Unknown => "* /v1/{unknown}",
}

impl Endpoint {
    /// The template part of `key()` (for fault matching).
    pub(crate) fn template(self) -> &'static str {
        self.key().split_once(' ').map(|(_, t)| t).unwrap_or("")
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Routes a `/v1/...` path; returns the endpoint and the `{id}` segment if any.
/// A customer's tax id has two: its `{id}` is `cus_…/txi_…` (the path's own
/// slice; see [`split_customer_tax_id`]).
pub(crate) fn route<'p>(method: &Method, path: &'p str) -> (Endpoint, Option<&'p str>) {
    use Endpoint::*;
    let Some(rest) = path.strip_prefix("/v1/") else {
        return (Unknown, None);
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let m = method.as_str();
    if let ["customers", _, "tax_ids", _] = segs.as_slice() {
        let both = rest
            .trim_end_matches('/')
            .strip_prefix("customers/")
            .unwrap_or_default();
        return match m {
            "GET" => (CustomerTaxIdRetrieve, Some(both)),
            "DELETE" => (CustomerTaxIdDelete, Some(both)),
            _ => (Unknown, None),
        };
    }
    let ep = match (m, segs.as_slice()) {
        ("POST", ["customers"]) => CustomerCreate,
        ("GET", ["customers"]) => CustomerList,
        ("GET", ["customers", "search"]) => CustomerSearch,
        ("GET", ["customers", id]) => return (CustomerRetrieve, Some(id)),
        ("POST", ["customers", id]) => return (CustomerUpdate, Some(id)),
        ("DELETE", ["customers", id]) => return (CustomerDelete, Some(id)),
        ("POST", ["products"]) => ProductCreate,
        ("GET", ["products"]) => ProductList,
        ("GET", ["products", id]) => return (ProductRetrieve, Some(id)),
        ("POST", ["prices"]) => PriceCreate,
        ("GET", ["prices"]) => PriceList,
        ("GET", ["prices", id]) => return (PriceRetrieve, Some(id)),
        ("POST", ["prices", id]) => return (PriceUpdate, Some(id)),
        ("POST", ["checkout", "sessions"]) => SessionCreate,
        ("GET", ["checkout", "sessions"]) => SessionList,
        ("GET", ["checkout", "sessions", id]) => return (SessionRetrieve, Some(id)),
        ("POST", ["checkout", "sessions", id, "expire"]) => return (SessionExpire, Some(id)),
        ("POST", ["subscriptions"]) => SubscriptionCreate,
        ("GET", ["subscriptions"]) => SubscriptionList,
        ("GET", ["subscriptions", id]) => return (SubscriptionRetrieve, Some(id)),
        ("POST", ["subscriptions", id]) => return (SubscriptionUpdate, Some(id)),
        ("DELETE", ["subscriptions", id]) => return (SubscriptionCancel, Some(id)),
        ("GET", ["invoices"]) => InvoiceList,
        ("GET", ["invoices", id]) => return (InvoiceRetrieve, Some(id)),
        ("POST", ["invoices", id, "pay"]) => return (InvoicePay, Some(id)),
        ("POST", ["subscription_schedules"]) => ScheduleCreate,
        ("GET", ["subscription_schedules"]) => ScheduleList,
        ("GET", ["subscription_schedules", id]) => return (ScheduleRetrieve, Some(id)),
        ("POST", ["subscription_schedules", id]) => return (ScheduleUpdate, Some(id)),
        ("POST", ["subscription_schedules", id, "release"]) => return (ScheduleRelease, Some(id)),
        ("POST", ["subscription_schedules", id, "cancel"]) => return (ScheduleCancel, Some(id)),
        ("POST", ["billing_portal", "sessions"]) => PortalSessionCreate,
        ("POST", ["billing", "meters"]) => MeterCreate,
        ("GET", ["billing", "meters"]) => MeterList,
        ("GET", ["billing", "meters", id]) => return (MeterRetrieve, Some(id)),
        ("POST", ["billing", "meters", id]) => return (MeterUpdate, Some(id)),
        ("POST", ["billing", "meters", id, "deactivate"]) => return (MeterDeactivate, Some(id)),
        ("POST", ["billing", "meters", id, "reactivate"]) => return (MeterReactivate, Some(id)),
        ("GET", ["billing", "meters", id, "event_summaries"]) => {
            return (MeterEventSummaryList, Some(id))
        }
        ("POST", ["billing", "meter_events"]) => MeterEventCreate,
        ("POST", ["billing", "meter_event_adjustments"]) => MeterEventAdjustmentCreate,
        ("GET", ["events"]) => EventList,
        ("GET", ["events", id]) => return (EventRetrieve, Some(id)),
        ("POST", ["customers", id, "tax_ids"]) => return (CustomerTaxIdCreate, Some(id)),
        ("GET", ["customers", id, "tax_ids"]) => return (CustomerTaxIdList, Some(id)),
        ("POST", ["tax_ids"]) => TaxIdCreate,
        ("GET", ["tax_ids"]) => TaxIdList,
        ("GET", ["tax_ids", id]) => return (TaxIdRetrieve, Some(id)),
        ("DELETE", ["tax_ids", id]) => return (TaxIdDelete, Some(id)),
        ("GET", ["tax_rates"]) => TaxRateList,
        ("GET", ["tax_rates", id]) => return (TaxRateRetrieve, Some(id)),
        ("POST", ["coupons"]) => CouponCreate,
        ("GET", ["coupons"]) => CouponList,
        ("GET", ["coupons", id]) => return (CouponRetrieve, Some(id)),
        ("POST", ["coupons", id]) => return (CouponUpdate, Some(id)),
        ("DELETE", ["coupons", id]) => return (CouponDelete, Some(id)),
        ("POST", ["promotion_codes"]) => PromotionCodeCreate,
        ("GET", ["promotion_codes"]) => PromotionCodeList,
        ("GET", ["promotion_codes", id]) => return (PromotionCodeRetrieve, Some(id)),
        ("POST", ["promotion_codes", id]) => return (PromotionCodeUpdate, Some(id)),
        _ => Unknown,
    };
    (ep, None)
}

/// `cus_…/txi_…` → (`cus_…`, `txi_…`).
pub(crate) fn split_customer_tax_id(both: &str) -> (&str, &str) {
    both.split_once("/tax_ids/").unwrap_or((both, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_templates() {
        assert_eq!(
            route(&Method::GET, "/v1/customers/cus_1"),
            (Endpoint::CustomerRetrieve, Some("cus_1"))
        );
        assert_eq!(
            route(&Method::GET, "/v1/customers/search").0,
            Endpoint::CustomerSearch
        );
        assert_eq!(
            route(&Method::POST, "/v1/checkout/sessions/cs_1/expire").0,
            Endpoint::SessionExpire
        );
        assert_eq!(route(&Method::PUT, "/v1/customers").0, Endpoint::Unknown);
        assert_eq!(
            route(&Method::POST, "/v1/invoices/in_1/pay"),
            (Endpoint::InvoicePay, Some("in_1"))
        );
        assert_eq!(
            route(
                &Method::POST,
                "/v1/subscription_schedules/sub_sched_1/release"
            ),
            (Endpoint::ScheduleRelease, Some("sub_sched_1"))
        );
        assert_eq!(
            route(&Method::GET, "/v1/billing/meters/mtr_1/event_summaries"),
            (Endpoint::MeterEventSummaryList, Some("mtr_1"))
        );
        assert_eq!(
            route(&Method::POST, "/v1/billing/meter_events").0,
            Endpoint::MeterEventCreate
        );
        assert_eq!(Endpoint::CustomerRetrieve.template(), "/v1/customers/{id}");
        let (ep, id) = route(&Method::DELETE, "/v1/customers/cus_1/tax_ids/txi_2");
        assert_eq!(ep, Endpoint::CustomerTaxIdDelete);
        assert_eq!(split_customer_tax_id(id.unwrap()), ("cus_1", "txi_2"));
        assert_eq!(
            route(&Method::POST, "/v1/customers/cus_1/tax_ids"),
            (Endpoint::CustomerTaxIdCreate, Some("cus_1"))
        );
        assert_eq!(
            route(&Method::GET, "/v1/promotion_codes").0,
            Endpoint::PromotionCodeList
        );
        assert_eq!(Endpoint::ALL[Endpoint::Unknown.index()], Endpoint::Unknown);
    }
}
