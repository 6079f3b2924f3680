//! Everything the clock does, in one place and in time order: when simulator time
//! passes a boundary, the work due there runs with "now" set to that boundary, one
//! boundary after another, so advancing by many periods at once replays every
//! renewal, retry and phase in the order they fall (ties: trial notices, then
//! payment retries, then phase ends, then period ends; then oldest object first).
//!
//! | boundary | what happens | events |
//! |---|---|---|
//! | 3 days before a trial ends | notice | `customer.subscription.trial_will_end` |
//! | a period ends (or a trial) | a schedule phase ending there moves on first; `cancel_at_period_end` cancels; otherwise a new period starts and its invoice is charged (a trial's end makes it `active`) | `customer.subscription.updated`, `invoice.created`, `invoice.finalized`, `invoice.paid` + `invoice.payment_succeeded` or `invoice.payment_failed` (+ `customer.subscription.updated` to `past_due`); or `customer.subscription.deleted` |
//! | a schedule phase ends mid-period | the next phase's items, prorated per its `proration_behavior`; or the schedule ends | `subscription_schedule.updated`, `customer.subscription.updated`; `subscription_schedule.released` / `.completed` |
//! | a payment retry (3, 5, 7 days after the first failure) | the card is charged again; after the last failure the subscription is canceled or marked `unpaid` | `invoice.paid` + `invoice.payment_succeeded` + `customer.subscription.updated` (`active`), or `invoice.payment_failed` (+ `customer.subscription.deleted` / `.updated`) |
//!
//! Work is found by scanning subscriptions and open invoices; the scan runs only
//! when something changed since the last one (`Agenda::touch`) or the earliest
//! known boundary has come, so requests pay one comparison otherwise.

use serde_json::{json, Map, Value};

use super::changes::Proration;
use super::invoices::{Attempt, Draft, Payment};
use super::periods::{period_of, renewal_period, set_period, TRIAL_WILL_END_DAYS};
use super::schedules::PhaseStep;
use super::{Ctx, Store};
use crate::config::FailedPaymentAction;
use crate::ids;
use crate::objects::LineKind;

/// Most boundaries one call processes (a guard against a runaway loop; a monthly
/// subscription advanced by a century has 1200).
const MAX_BOUNDARIES: usize = 100_000;

/// When the clock next has work to do.
#[derive(Debug, Default)]
pub(crate) struct Agenda {
    /// Something changed since the last scan: the next boundary must be recomputed.
    dirty: bool,
    /// The earliest boundary found by the last scan (`None`: nothing scheduled).
    next_due: Option<i64>,
}

impl Agenda {
    /// Records that subscriptions, invoices or schedules changed.
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }
}

/// A piece of clock-driven work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    TrialWillEnd(String),
    Retry(String),
    PhaseEnd(String),
    PeriodEnd(String),
    /// A draft that bills usage has waited out the grace period (see `metered`).
    Finalize(String),
}

impl Store {
    /// Runs every boundary at or before `until`, in time order.
    pub(crate) fn run_clock(&mut self, base: &Ctx, until: i64) {
        self.settle_tax_ids(base, until);
        if !self.agenda.dirty && self.agenda.next_due.is_none_or(|due| due > until) {
            return;
        }
        let mut last: Option<(i64, Due)> = None;
        for _ in 0..MAX_BOUNDARIES {
            let next = self.next_boundary();
            match next {
                Some((at, due)) if at <= until => {
                    if last.as_ref() == Some(&(at, due.clone())) {
                        tracing::warn!(?due, at, "clock work did not advance; skipping");
                        break;
                    }
                    let ctx = Ctx {
                        now: at,
                        now_ms: at * 1000,
                        request_id: None,
                        idempotency_key: None,
                        ..base.clone()
                    };
                    self.process(&ctx, &due);
                    last = Some((at, due));
                }
                other => {
                    self.agenda.next_due = other.map(|(at, _)| at);
                    self.agenda.dirty = false;
                    return;
                }
            }
        }
        self.agenda.dirty = true;
    }

    /// The earliest piece of work, by (time, kind, age).
    fn next_boundary(&self) -> Option<(i64, Due)> {
        let mut best: Option<(i64, Due, u64)> = None;
        let mut consider = |at: i64, due: Due, seq: u64| {
            let better = match &best {
                None => true,
                Some((bat, bdue, bseq)) => (at, rank(&due), seq) < (*bat, rank(bdue), *bseq),
            };
            if better {
                best = Some((at, due, seq));
            }
        };
        for e in self.subscriptions.iter_newest() {
            let sub = &e.obj;
            let status = sub["status"].as_str().unwrap_or("");
            if !matches!(status, "trialing" | "active" | "past_due" | "unpaid") {
                continue;
            }
            let id = sub["id"].as_str().unwrap_or_default().to_string();
            let (_, end) = period_of(sub);
            if status == "trialing"
                && !self
                    .sub_extra
                    .get(&id)
                    .is_some_and(|x| x.trial_will_end_sent)
            {
                let trial_end = sub["trial_end"].as_i64().unwrap_or(end);
                let start = sub["trial_start"].as_i64().unwrap_or(trial_end);
                let at = (trial_end - TRIAL_WILL_END_DAYS * 86_400).max(start);
                consider(at, Due::TrialWillEnd(id.clone()), e.seq);
            }
            let phase_end = sub["schedule"]
                .as_str()
                .and_then(|s| self.schedules.get(s))
                .filter(|s| s["status"] == "active")
                .and_then(|s| s["current_phase"]["end_date"].as_i64());
            match phase_end {
                Some(pe) if pe < end => consider(pe, Due::PhaseEnd(id), e.seq),
                _ => consider(end, Due::PeriodEnd(id), e.seq),
            }
        }
        for (inv_id, _) in self.dunning.iter() {
            let Some(entry) = self.invoices.entry(inv_id) else {
                continue;
            };
            let inv = &entry.obj;
            if inv["status"] != "open" {
                continue;
            }
            let Some(at) = inv["next_payment_attempt"].as_i64() else {
                continue;
            };
            let sub_alive = inv["parent"]["subscription_details"]["subscription"]
                .as_str()
                .and_then(|s| self.subscriptions.get(s))
                .is_some_and(|s| s["status"] != "canceled");
            if sub_alive {
                consider(at, Due::Retry(inv_id.clone()), entry.seq);
            }
        }
        for (inv_id, at) in &self.metering.grace {
            let seq = self.invoices.entry(inv_id).map_or(0, |e| e.seq);
            consider(*at, Due::Finalize(inv_id.clone()), seq);
        }
        best.map(|(at, due, _)| (at, due))
    }

    fn process(&mut self, ctx: &Ctx, due: &Due) {
        match due {
            Due::TrialWillEnd(id) => {
                self.sub_extra
                    .entry(id.clone())
                    .or_default()
                    .trial_will_end_sent = true;
                self.agenda.touch();
                if let Some(sub) = self.subscriptions.get(id).cloned() {
                    self.emit(ctx, "customer.subscription.trial_will_end", &sub, None);
                }
            }
            Due::Retry(id) => self.retry_payment(ctx, id),
            Due::PhaseEnd(id) => self.phase_ends_mid_period(ctx, id),
            Due::PeriodEnd(id) => self.period_ends(ctx, id),
            Due::Finalize(id) => self.finalize_after_grace(ctx, id),
        }
    }

    /// A scheduled retry of an open invoice; after the last failure the
    /// subscription is canceled or marked `unpaid`.
    fn retry_payment(&mut self, ctx: &Ctx, invoice_id: &str) {
        let payment = self.charge_invoice(ctx, invoice_id, Attempt::Retry);
        self.settle_subscription(ctx, invoice_id, payment);
        let inv = self.invoices.get(invoice_id).expect("exists");
        if payment == Payment::Paid || !inv["next_payment_attempt"].is_null() {
            return;
        }
        self.dunning.remove(invoice_id);
        let Some(sub_id) = inv["parent"]["subscription_details"]["subscription"]
            .as_str()
            .map(str::to_string)
        else {
            return;
        };
        let status = self
            .subscriptions
            .get(&sub_id)
            .and_then(|s| s["status"].as_str())
            .unwrap_or("")
            .to_string();
        if status != "past_due" {
            return;
        }
        match self.after_failed_payments {
            FailedPaymentAction::Cancel => {
                let _ = self.cancel_subscription(ctx, &sub_id, "payment_failed");
            }
            FailedPaymentAction::Unpaid => {
                let sub = self.subscriptions.get_mut(&sub_id).expect("exists");
                sub["status"] = json!("unpaid");
                let snapshot = sub.clone();
                self.agenda.touch();
                self.emit(
                    ctx,
                    "customer.subscription.updated",
                    &snapshot,
                    Some(json!({ "status": "past_due" })),
                );
            }
        }
    }

    /// A schedule phase ends before the period does.
    fn phase_ends_mid_period(&mut self, ctx: &Ctx, sub_id: &str) {
        let Some(sched_id) = self
            .subscriptions
            .get(sub_id)
            .and_then(|s| s["schedule"].as_str())
            .map(str::to_string)
        else {
            return;
        };
        match self.end_phase(ctx, &sched_id, ctx.now) {
            PhaseStep::Next {
                items,
                proration,
                metadata,
            } => {
                let mut previous = Map::new();
                self.apply_phase_metadata(sub_id, &metadata, &mut previous);
                self.apply_phase_items(ctx, sub_id, &items, proration, ctx.now, Some(previous));
            }
            PhaseStep::Released => {
                let sub = self.subscriptions.get_mut(sub_id).expect("exists");
                sub["schedule"] = Value::Null;
                let snapshot = sub.clone();
                self.emit(
                    ctx,
                    "customer.subscription.updated",
                    &snapshot,
                    Some(json!({ "schedule": sched_id })),
                );
            }
            PhaseStep::Cancel => self.cancel_for_schedule(ctx, sub_id, &sched_id),
        }
    }

    /// Merges a phase's metadata into the subscription's (Stripe does this when the
    /// phase starts).
    fn apply_phase_metadata(
        &mut self,
        sub_id: &str,
        metadata: &Value,
        previous: &mut Map<String, Value>,
    ) {
        let Some(meta) = metadata.as_object().filter(|m| !m.is_empty()) else {
            return;
        };
        let sub = self.subscriptions.get_mut(sub_id).expect("exists");
        previous.insert("metadata".into(), sub["metadata"].clone());
        for (k, v) in meta {
            match v.as_str() {
                Some("") | None => {
                    sub["metadata"].as_object_mut().map(|m| m.remove(k));
                }
                Some(_) => sub["metadata"][k] = v.clone(),
            }
        }
    }

    /// The last phase ended with `end_behavior: cancel` (usage so far is invoiced).
    fn cancel_for_schedule(&mut self, ctx: &Ctx, sub_id: &str, sched_id: &str) {
        self.close_all_usage(sub_id, ctx.now);
        let _ = self.cancel_subscription(ctx, sub_id, "cancellation_requested");
        if let Some(schedule) = self.schedules.get(sched_id).cloned() {
            self.emit(ctx, "subscription_schedule.completed", &schedule, None);
        }
        self.bill_pending_usage(ctx, sub_id, ctx.now);
    }

    /// A billing period (or trial) ends: phase change, cancellation or renewal.
    fn period_ends(&mut self, ctx: &Ctx, sub_id: &str) {
        let at = ctx.now;
        let sub = self.subscriptions.get(sub_id).expect("exists").clone();
        let mut previous = Map::new();
        let mut new_items = None;
        let phase_ends_here = sub["schedule"]
            .as_str()
            .and_then(|s| self.schedules.get(s))
            .filter(|s| s["status"] == "active")
            .is_some_and(|s| s["current_phase"]["end_date"] == at);
        if phase_ends_here {
            let sched_id = sub["schedule"].as_str().unwrap_or_default().to_string();
            match self.end_phase(ctx, &sched_id, at) {
                PhaseStep::Next {
                    items, metadata, ..
                } => {
                    self.apply_phase_metadata(sub_id, &metadata, &mut previous);
                    new_items = Some(items);
                }
                PhaseStep::Released => {
                    let s = self.subscriptions.get_mut(sub_id).expect("exists");
                    s["schedule"] = Value::Null;
                    previous.insert("schedule".into(), json!(sched_id));
                }
                PhaseStep::Cancel => {
                    self.cancel_for_schedule(ctx, sub_id, &sched_id);
                    return;
                }
            }
        }
        if sub["cancel_at_period_end"] == true {
            // The period's usage is still owed: a final invoice bills it.
            self.close_all_usage(sub_id, at);
            let _ = self.cancel_subscription(ctx, sub_id, "cancellation_requested");
            self.bill_pending_usage(ctx, sub_id, at);
            return;
        }
        // Renew: the next phase's items (if any) bill from this boundary on, with no
        // proration: one price change, at the boundary.
        previous.insert("items".into(), sub["items"].clone());
        previous.insert("latest_invoice".into(), sub["latest_invoice"].clone());
        if let Some(items) = new_items {
            self.change_items(sub_id, &items, Proration::None, at);
        }
        // The ending period's usage goes on this renewal (at the prices it accrued at).
        self.close_all_usage(sub_id, at);
        let invoice_id = ids::object_id("in_");
        let s = self.subscriptions.get_mut(sub_id).expect("exists");
        let (old_start, _) = period_of(s);
        let anchor = s["billing_cycle_anchor"].as_i64().unwrap_or(at);
        let price = s["items"]["data"][0]["price"].clone();
        set_period(s, renewal_period(&price, anchor, at));
        if s["status"] == "trialing" {
            previous.insert("status".into(), json!("trialing"));
            s["status"] = json!("active");
        }
        s["latest_invoice"] = json!(invoice_id);
        let unpaid = s["status"] == "unpaid";
        let snapshot = s.clone();
        self.agenda.touch();
        self.emit(
            ctx,
            "customer.subscription.updated",
            &snapshot,
            Some(Value::Object(previous)),
        );
        let draft = Draft {
            id: invoice_id,
            reason: "subscription_cycle",
            lines: self.period_lines(&snapshot, LineKind::Period),
            period: (old_start, at),
        };
        if unpaid {
            // Stripe keeps generating invoices for an unpaid subscription, as drafts.
            self.draft_invoice(ctx, &snapshot, draft);
        } else {
            // An invoice that bills usage waits out the grace period as a draft.
            let id = self.draft_invoice(ctx, &snapshot, draft);
            if !self.hold_for_grace(&id, at) {
                let payment = self.charge_invoice(ctx, &id, Attempt::First);
                self.settle_subscription(ctx, &id, payment);
            }
        }
    }
}

fn rank(due: &Due) -> u8 {
    match due {
        Due::TrialWillEnd(_) => 0,
        Due::Retry(_) => 1,
        Due::PhaseEnd(_) => 2,
        Due::PeriodEnd(_) => 3,
        Due::Finalize(_) => 4,
    }
}
