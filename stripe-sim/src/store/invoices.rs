//! Invoices: created for a subscription (first period, renewal, trial end, prorated
//! change), finalized at once (number, customer balance, hosted page and PDF URLs)
//! and charged to the customer's card, which either pays them or declines. A declined
//! automatic charge is retried 3, 5 and 7 days after the first failure (see
//! `clockwork`); `POST /v1/invoices/{id}/pay` charges on demand.
//!
//! Events, in Stripe's order: `invoice.created`, `invoice.finalized`, then
//! `invoice.paid` + `invoice.payment_succeeded`, or `invoice.payment_failed`.

use serde_json::{json, Value};

use super::{created_filter, paginate, Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

/// Days after the first failed charge at which Stripe's retries run.
pub(crate) const RETRY_DAYS: [i64; 3] = [3, 5, 7];

const STATUSES: [&str; 5] = ["draft", "open", "paid", "uncollectible", "void"];

/// An invoice about to be drafted for a subscription.
pub(crate) struct Draft {
    /// Chosen beforehand so the subscription can name it in earlier events.
    pub id: String,
    pub reason: &'static str,
    pub lines: Vec<Value>,
    /// Stripe's invoice-items period (see `objects::InvoiceFields`).
    pub period: (i64, i64),
}

/// Automatic retries of one open invoice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dunning {
    /// When the first automatic charge failed.
    pub first_failure: i64,
    /// Retries run so far (0 to 3).
    pub retries: usize,
}

/// Who asked for a charge, which decides what a decline does to the retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The charge made when the invoice is finalized: a decline starts the retries.
    First,
    /// A scheduled retry: a decline moves on to the next one (or ends them).
    Retry,
    /// `POST /v1/invoices/{id}/pay` or the portal: the schedule stays as it was.
    Manual,
    /// The first invoice of a subscription created directly: no retries (`incomplete`).
    FirstNoRetry,
}

/// The result of charging an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payment {
    Paid,
    Declined,
}

impl Store {
    fn customer_snapshot(&self, id: &str) -> Value {
        self.customers
            .get(id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": id, "email": null, "name": null }))
    }

    /// Whether charging `customer`'s card would fail now.
    pub(crate) fn card_declines(&self, customer: &str) -> bool {
        self.declining_cards.contains(customer)
    }

    /// `POST /_sim/customers/{id}/card {"declines"}`.
    pub fn set_card(&mut self, customer: &str, declines: bool) -> Result<Value, ApiError> {
        if self.customers.get(customer).is_none() {
            return Err(ApiError::no_such("customer", customer));
        }
        if declines {
            self.declining_cards.insert(customer.to_string());
        } else {
            self.declining_cards.remove(customer);
        }
        Ok(json!({ "customer": customer, "declines": declines }))
    }

    /// Stores a draft invoice for `sub` with the draft's lines after every pending
    /// proration of the subscription, and emits `invoice.created`.
    pub(crate) fn draft_invoice(&mut self, ctx: &Ctx, sub: &Value, draft: Draft) -> String {
        let Draft {
            id,
            reason,
            lines,
            period,
        } = draft;
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let mut all = self.pending_items.remove(sub_id).unwrap_or_default();
        all.extend(lines);
        all.extend(self.usage_lines(&id, sub));
        for line in &mut all {
            line["invoice"] = json!(id);
        }
        let customer = self.customer_snapshot(sub["customer"].as_str().unwrap_or_default());
        let mut invoice = objects::draft_invoice(
            &id,
            ctx.now,
            objects::InvoiceFields {
                customer: &customer,
                subscription: sub,
                currency: sub["currency"].as_str().unwrap_or("usd").to_string(),
                lines: all,
                period,
                billing_reason: reason,
            },
        );
        self.adjust_invoice(ctx, &mut invoice, sub);
        self.emit(ctx, "invoice.created", &invoice, None);
        self.invoices
            .insert(id.clone(), invoice, ctx.now_ms + ctx.search_lag_ms);
        self.agenda.touch();
        id
    }

    /// Draft → open: a number from the customer's sequence, the customer's balance
    /// applied (a credit lowers `amount_due`; a negative total becomes credit), the
    /// hosted page and PDF URLs. Emits `invoice.finalized`.
    pub(crate) fn finalize_invoice(&mut self, ctx: &Ctx, id: &str) {
        let Some(inv) = self.invoices.get(id) else {
            return;
        };
        if inv["status"] != "draft" {
            return;
        }
        self.refresh_usage_lines(id);
        let inv = self.invoices.get(id).expect("checked");
        let customer_id = inv["customer"].as_str().unwrap_or_default().to_string();
        let total = inv["total"].as_i64().unwrap_or(0);
        let (number, balance) = match self.customers.get_mut(&customer_id) {
            Some(c) => {
                let seq = c["next_invoice_sequence"].as_i64().unwrap_or(1);
                c["next_invoice_sequence"] = json!(seq + 1);
                let prefix = c["invoice_prefix"].as_str().unwrap_or("SIM").to_string();
                (
                    format!("{prefix}-{seq:04}"),
                    c["balance"].as_i64().unwrap_or(0),
                )
            }
            None => (format!("SIM-{}", ids::new_id("", 6)), 0),
        };
        let after = total + balance;
        let ending_balance = after.min(0);
        if ending_balance != balance {
            if let Some(c) = self.customers.get_mut(&customer_id) {
                c["balance"] = json!(ending_balance);
            }
        }
        let inv = self.invoices.get_mut(id).expect("checked");
        inv["number"] = json!(number);
        inv["status"] = json!("open");
        inv["starting_balance"] = json!(balance);
        inv["ending_balance"] = json!(ending_balance);
        inv["amount_due"] = json!(after.max(0));
        inv["amount_remaining"] = json!(after.max(0));
        inv["effective_at"] = json!(ctx.now);
        inv["status_transitions"]["finalized_at"] = json!(ctx.now);
        inv["webhooks_delivered_at"] = json!(ctx.now);
        inv["hosted_invoice_url"] = json!(format!("{}/invoice/{id}", ctx.base_url));
        inv["invoice_pdf"] = json!(format!("{}/invoice/{id}/pdf", ctx.base_url));
        let snapshot = inv.clone();
        self.emit(ctx, "invoice.finalized", &snapshot, None);
    }

    /// Charges an open invoice (finalizing a draft first). Nothing due: paid without
    /// a charge. Emits `invoice.paid` + `invoice.payment_succeeded`, or
    /// `invoice.payment_failed` with the attempt count and the next retry.
    pub(crate) fn charge_invoice(&mut self, ctx: &Ctx, id: &str, attempt: Attempt) -> Payment {
        self.finalize_invoice(ctx, id);
        let inv = self.invoices.get(id).expect("invoice exists");
        let due = inv["amount_remaining"].as_i64().unwrap_or(0);
        let declined = due > 0 && self.card_declines(inv["customer"].as_str().unwrap_or(""));
        let next_attempt = if declined {
            match attempt {
                Attempt::First => {
                    self.dunning.insert(
                        id.to_string(),
                        Dunning {
                            first_failure: ctx.now,
                            retries: 0,
                        },
                    );
                    Some(ctx.now + RETRY_DAYS[0] * 86_400)
                }
                Attempt::Retry => self.dunning.get_mut(id).and_then(|d| {
                    d.retries += 1;
                    RETRY_DAYS
                        .get(d.retries)
                        .map(|days| d.first_failure + days * 86_400)
                }),
                Attempt::Manual => {
                    self.invoices.get(id).expect("exists")["next_payment_attempt"].as_i64()
                }
                Attempt::FirstNoRetry => None,
            }
        } else {
            None
        };
        if !declined {
            self.dunning.remove(id);
        }
        self.agenda.touch();
        let inv = self.invoices.get_mut(id).expect("invoice exists");
        if due > 0 {
            inv["attempt_count"] = json!(inv["attempt_count"].as_u64().unwrap_or(0) + 1);
            inv["attempted"] = json!(true);
        }
        if declined {
            inv["next_payment_attempt"] = json!(next_attempt);
            inv["auto_advance"] = json!(next_attempt.is_some());
            let snapshot = inv.clone();
            self.emit(ctx, "invoice.payment_failed", &snapshot, None);
            Payment::Declined
        } else {
            inv["status"] = json!("paid");
            inv["amount_paid"] = json!(due);
            inv["amount_remaining"] = json!(0);
            inv["next_payment_attempt"] = Value::Null;
            inv["auto_advance"] = json!(false);
            inv["attempted"] = json!(true);
            inv["status_transitions"]["paid_at"] = json!(ctx.now);
            let snapshot = inv.clone();
            self.emit(ctx, "invoice.paid", &snapshot, None);
            self.emit(ctx, "invoice.payment_succeeded", &snapshot, None);
            Payment::Paid
        }
    }

    /// What a charge means for the invoice's subscription: paid → `active` again
    /// (from `past_due`, `unpaid` or `incomplete`) when it is the latest invoice;
    /// declined → `past_due` (an `incomplete` subscription stays so).
    pub(crate) fn settle_subscription(&mut self, ctx: &Ctx, invoice_id: &str, payment: Payment) {
        let Some(sub_id) = self.invoices.get(invoice_id).and_then(|i| {
            i["parent"]["subscription_details"]["subscription"]
                .as_str()
                .map(str::to_string)
        }) else {
            return;
        };
        let Some(sub) = self.subscriptions.get_mut(&sub_id) else {
            return;
        };
        let status = sub["status"].as_str().unwrap_or("").to_string();
        let new_status = match payment {
            Payment::Paid
                if sub["latest_invoice"] == invoice_id
                    && matches!(status.as_str(), "past_due" | "unpaid" | "incomplete") =>
            {
                "active"
            }
            Payment::Declined if matches!(status.as_str(), "active" | "trialing") => "past_due",
            _ => return,
        };
        sub["status"] = json!(new_status);
        let snapshot = sub.clone();
        self.agenda.touch();
        self.emit(
            ctx,
            "customer.subscription.updated",
            &snapshot,
            Some(json!({ "status": status })),
        );
    }

    /// Draft, finalize and charge an invoice for `sub`, then settle the subscription.
    pub(crate) fn bill(
        &mut self,
        ctx: &Ctx,
        sub: &Value,
        draft: Draft,
        attempt: Attempt,
    ) -> Payment {
        let id = self.draft_invoice(ctx, sub, draft);
        let payment = self.charge_invoice(ctx, &id, attempt);
        self.settle_subscription(ctx, &id, payment);
        payment
    }

    pub fn retrieve_invoice(&self, id: &str) -> Result<&Value, ApiError> {
        self.invoices
            .get(id)
            .ok_or_else(|| ApiError::no_such("invoice", id))
    }

    /// `GET /v1/invoices`: newest first, by `customer`, `subscription`, `status`,
    /// `collection_method`, `created`.
    pub fn list_invoices(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.str("customer")?;
        let subscription = p.str("subscription")?;
        let status = p.str("status")?;
        if let Some(s) = &status {
            if !STATUSES.contains(&s.as_str()) {
                return Err(ApiError::invalid(
                    "status",
                    format!("Invalid status: must be one of {}", STATUSES.join(", ")),
                ));
            }
        }
        let collection = p.str("collection_method")?;
        let created = created_filter(p)?;
        paginate(&self.invoices, p, "/v1/invoices", "invoice", |i| {
            customer
                .as_ref()
                .is_none_or(|c| i["customer"] == c.as_str())
                && subscription.as_ref().is_none_or(|c| {
                    i["parent"]["subscription_details"]["subscription"] == c.as_str()
                })
                && status.as_ref().is_none_or(|c| i["status"] == c.as_str())
                && collection
                    .as_ref()
                    .is_none_or(|c| i["collection_method"] == c.as_str())
                && created(i)
        })
    }

    /// `POST /v1/invoices/{id}/pay`: charges the card now (`paid_out_of_band=true`
    /// marks it paid without a charge). A decline answers 402 `card_declined` and
    /// leaves the invoice open (its retry schedule unchanged).
    pub fn pay_invoice(&mut self, ctx: &Ctx, id: &str, p: Params<'_>) -> Result<Value, ApiError> {
        let out_of_band = p.bool("paid_out_of_band")?.unwrap_or(false);
        let inv = self.retrieve_invoice(id)?;
        match inv["status"].as_str().unwrap_or("") {
            "paid" => return Err(ApiError::invalid("invoice", "Invoice is already paid.")),
            "void" | "uncollectible" => {
                return Err(ApiError::invalid(
                    "invoice",
                    format!(
                        "You cannot pay an invoice with status `{}`.",
                        inv["status"].as_str().unwrap_or("")
                    ),
                ))
            }
            _ => {}
        }
        if out_of_band {
            self.finalize_invoice(ctx, id);
            let inv = self.invoices.get_mut(id).expect("exists");
            inv["status"] = json!("paid");
            inv["amount_paid_off_stripe"] = inv["amount_remaining"].clone();
            inv["amount_remaining"] = json!(0);
            inv["next_payment_attempt"] = Value::Null;
            inv["auto_advance"] = json!(false);
            inv["status_transitions"]["paid_at"] = json!(ctx.now);
            let snapshot = inv.clone();
            self.dunning.remove(id);
            self.agenda.touch();
            self.emit(ctx, "invoice.paid", &snapshot, None);
            self.settle_subscription(ctx, id, Payment::Paid);
            return Ok(self.invoices.get(id).expect("exists").clone());
        }
        let payment = self.charge_invoice(ctx, id, Attempt::Manual);
        self.settle_subscription(ctx, id, payment);
        match payment {
            Payment::Paid => Ok(self.invoices.get(id).expect("exists").clone()),
            Payment::Declined => Err(ApiError::card_declined()),
        }
    }

    /// Open invoices of `customer`, oldest first (the portal's "Pay open invoices").
    pub(crate) fn open_invoices_of(&self, customer: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .invoices
            .iter_newest()
            .filter(|e| e.obj["customer"] == customer && e.obj["status"] == "open")
            .filter_map(|e| e.obj["id"].as_str().map(str::to_string))
            .collect();
        ids.reverse();
        ids
    }
}
