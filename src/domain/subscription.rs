/// Whether a Stripe subscription status keeps the tenant on its paid plan.
///
/// One rule for both places that ask: Checkout refuses a second paid
/// subscription (409), and webhooks decide the plan and guard against a lapsed
/// old subscription demoting a current one. `past_due` still counts: Stripe is
/// retrying the payment and the subscription has not ended.
pub fn is_paying(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_subscriptions_pay() {
        for status in ["active", "trialing", "past_due"] {
            assert!(is_paying(status), "{status}");
        }
        for status in [
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
            "",
        ] {
            assert!(!is_paying(status), "{status}");
        }
    }
}
