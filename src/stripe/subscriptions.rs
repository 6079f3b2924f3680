use std::collections::HashMap;

use stripe_billing::subscription::{
    ListSubscription, ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionAutomaticTax, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};

use super::{StripeFailure, StripeGateway};

/// The part of a subscription the service caches and decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSubscription {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub created: i64,
    /// The plan's item (the first licensed one): its price, its quantity
    /// (seats) and its id (a price change updates this item rather than
    /// adding one).
    pub item_id: Option<String>,
    pub price_id: Option<String>,
    pub quantity: Option<u64>,
    /// Unix seconds; on the first item in current API versions.
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    /// The subscription schedule managing it (a pending downgrade), if any.
    pub schedule_id: Option<String>,
    pub metadata: HashMap<String, String>,
    /// The currency it bills in (`eur`).
    pub currency: String,
    pub automatic_tax: bool,
    /// The metered items (usage billed in arrears): `(item id, price id)`.
    pub metered_items: Vec<(String, String)>,
}

fn is_metered(item: &stripe_billing::SubscriptionItem) -> bool {
    item.price
        .recurring
        .as_ref()
        .is_some_and(|r| r.usage_type == stripe_product::RecurringUsageType::Metered)
}

impl From<stripe_billing::Subscription> for StripeSubscription {
    fn from(subscription: stripe_billing::Subscription) -> Self {
        let items = &subscription.items.data;
        let first_item = items
            .iter()
            .find(|item| !is_metered(item))
            .or(items.first());
        let metered_items = items
            .iter()
            .filter(|item| is_metered(item))
            .map(|item| (item.id.to_string(), item.price.id.to_string()))
            .collect();
        StripeSubscription {
            id: subscription.id.to_string(),
            customer_id: subscription.customer.id().to_string(),
            status: subscription.status.as_str().to_owned(),
            created: subscription.created,
            item_id: first_item.map(|item| item.id.to_string()),
            price_id: first_item.map(|item| item.price.id.to_string()),
            quantity: first_item.and_then(|item| item.quantity),
            current_period_start: first_item.map(|item| item.current_period_start),
            current_period_end: first_item.map(|item| item.current_period_end),
            cancel_at_period_end: subscription.cancel_at_period_end,
            trial_start: subscription.trial_start,
            trial_end: subscription.trial_end,
            schedule_id: subscription.schedule.map(|s| s.id().to_string()),
            metadata: subscription.metadata,
            currency: subscription.currency.to_string(),
            automatic_tax: subscription.automatic_tax.enabled,
            metered_items,
        }
    }
}

/// How Stripe bills a price change made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    /// Invoice the prorated difference at once (an upgrade).
    AlwaysInvoice,
    /// Carry prorations to the next invoice.
    CreateProrations,
    None,
}

/// A change to a subscription: only the fields set are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionUpdate {
    /// Moves the item `item_id` to `price` (and `quantity`, when set).
    pub item: Option<ItemChange>,
    pub proration: Option<Proration>,
    pub cancel_at_period_end: Option<bool>,
    pub metadata: HashMap<String, String>,
    /// Keeps (or turns on) automatic tax on the subscription.
    pub automatic_tax: Option<bool>,
    /// Metered items to add, move to another price or remove.
    pub metered: Vec<MeteredChange>,
}

/// A change to the subscription's metered items (usage already accrued on an
/// item that changes or goes is billed by Stripe on the next invoice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeteredChange {
    Add { price_id: String },
    Replace { item_id: String, price_id: String },
    Remove { item_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    pub item_id: String,
    pub price_id: String,
    pub quantity: Option<u64>,
}

impl StripeGateway {
    /// The subscription as Stripe has it now: webhooks re-read state instead of
    /// trusting a payload that may be late or out of order.
    pub async fn retrieve_subscription(
        &self,
        id: &str,
    ) -> Result<StripeSubscription, StripeFailure> {
        let request = RetrieveSubscription::new(id);
        self.policy
            .run("retrieve_subscription", || request.send(&self.client))
            .await
            .map(StripeSubscription::from)
    }

    /// Every subscription of `customer_id`, ended ones included, newest
    /// first (the list API is consistent; `sync` decides on it).
    pub async fn list_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<StripeSubscription>, StripeFailure> {
        let mut found = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let mut request = ListSubscription::new()
                .customer(customer_id.to_owned())
                .status(ListSubscriptionStatus::All)
                .limit(100);
            if let Some(cursor) = &starting_after {
                request = request.starting_after(cursor.clone());
            }
            let page = self
                .policy
                .run("list_subscriptions", || request.send(&self.client))
                .await?;
            starting_after = page.data.last().map(|s| s.id.to_string());
            found.extend(page.data.into_iter().map(StripeSubscription::from));
            if !page.has_more || starting_after.is_none() {
                break;
            }
        }
        found.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok(found)
    }

    /// Applies `update` under one idempotency key for the intent.
    pub async fn update_subscription(
        &self,
        id: &str,
        update: &SubscriptionUpdate,
        key_parts: &[&str],
    ) -> Result<StripeSubscription, StripeFailure> {
        let mut request = UpdateSubscription::new(id);
        let mut items = Vec::new();
        if let Some(change) = &update.item {
            let mut item = UpdateSubscriptionItems::new();
            item.id = Some(change.item_id.clone());
            item.price = Some(change.price_id.clone());
            item.quantity = change.quantity;
            items.push(item);
        }
        for change in &update.metered {
            let mut item = UpdateSubscriptionItems::new();
            match change {
                MeteredChange::Add { price_id } => item.price = Some(price_id.clone()),
                MeteredChange::Replace { item_id, price_id } => {
                    item.id = Some(item_id.clone());
                    item.price = Some(price_id.clone());
                }
                MeteredChange::Remove { item_id } => {
                    item.id = Some(item_id.clone());
                    item.deleted = Some(true);
                }
            }
            items.push(item);
        }
        if !items.is_empty() {
            request = request.items(items);
        }
        if let Some(proration) = update.proration {
            request = request.proration_behavior(match proration {
                Proration::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
                Proration::CreateProrations => {
                    UpdateSubscriptionProrationBehavior::CreateProrations
                }
                Proration::None => UpdateSubscriptionProrationBehavior::None,
            });
        }
        if let Some(cancel) = update.cancel_at_period_end {
            request = request.cancel_at_period_end(cancel);
        }
        if !update.metadata.is_empty() {
            request = request.metadata(update.metadata.clone());
        }
        if let Some(enabled) = update.automatic_tax {
            request = request.automatic_tax(UpdateSubscriptionAutomaticTax::new(enabled));
        }
        self.send_idempotent("update_subscription", &request, key_parts)
            .await
            .map(StripeSubscription::from)
    }
}
