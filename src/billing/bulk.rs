//! Bulk runs over every tenant (`backfill-customers`, `sync --all`).
//!
//! One runner, generic over the per-tenant operation, gives every bulk
//! command the same guarantees:
//! - *Streaming*: tenant ids are read in keyset pages (`tenants::page`)
//!   into a bounded channel, so a run over a million rows holds one page.
//! - *Pacing*: operations call Stripe through a gateway `with_pacer`, shared
//!   by the concurrent workers, so the run never exceeds its rate.
//! - *Deferral*: an operation that finds the tenant held by someone else (a
//!   live request, a crashed run's lease) answers `Step::Deferred` instead of
//!   waiting; the tenant goes to the end of the run and the worker takes the
//!   next one, so the run keeps its rate. Deferred tenants are retried once
//!   the stream is done, each no earlier than its lease ends, and count as
//!   the operation's `gave_up` outcome after `Billing::claim_patience`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;

use chrono::{NaiveDateTime, Utc};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::Billing;
use crate::db::tenants::{self, Selection, WalkKey};
use crate::db::{self, DbError};
use crate::domain::TenantId;

/// Rows read per page from the database.
const PAGE: i64 = 500;

/// What one try at one tenant came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<O> {
    Done(O),
    /// Someone else holds the tenant until then: try again later.
    Deferred {
        until: NaiveDateTime,
    },
}

/// The outcomes of an operation, as the totals line counts them.
pub trait BulkOutcome: Copy + std::fmt::Debug + 'static {
    /// Labels in print order; `index` maps an outcome to its label.
    const LABELS: &'static [&'static str];
    fn index(self) -> usize;
    /// Failed tenants make the command exit 1 (a re-run retries them).
    fn is_failure(self) -> bool;
}

/// A per-tenant operation a bulk run applies.
pub trait BulkOperation: 'static {
    type Outcome: BulkOutcome;
    /// The tenants the run walks.
    fn selection(&self) -> Selection;
    /// One try at one tenant. Must not wait on another holder of the tenant:
    /// answer `Step::Deferred` instead.
    fn run<'a>(
        &'a self,
        billing: &'a Billing,
        tenant: &'a TenantId,
    ) -> impl Future<Output = Step<Self::Outcome>> + 'a;
    /// What a tenant still held by someone else at the end of its patience counts as.
    fn gave_up(&self) -> Self::Outcome;
}

/// Per-outcome counts of a run, printed as `created 3, adopted 0, …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkTotals<O> {
    counts: Vec<u64>,
    /// How many times a tenant was put back to the end of the run.
    pub deferrals: u64,
    outcome: PhantomData<O>,
}

impl<O: BulkOutcome> Default for BulkTotals<O> {
    fn default() -> Self {
        BulkTotals {
            counts: vec![0; O::LABELS.len()],
            deferrals: 0,
            outcome: PhantomData,
        }
    }
}

impl<O: BulkOutcome> BulkTotals<O> {
    pub fn add(&mut self, outcome: O) {
        self.counts[outcome.index()] += 1;
    }

    /// How many tenants ended with `outcome`.
    pub fn get(&self, outcome: O) -> u64 {
        self.counts[outcome.index()]
    }

    /// Tenants handled, whatever the outcome.
    pub fn done(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl<O: BulkOutcome> std::fmt::Display for BulkTotals<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (label, count)) in O::LABELS.iter().zip(&self.counts).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{label} {count}")?;
        }
        Ok(())
    }
}

/// A tenant put back to the end of the run.
struct Deferred {
    tenant: TenantId,
    not_before: Instant,
    first_deferred: Instant,
}

impl Billing {
    /// How many tenants `selection` holds now (a progress bar's total).
    pub async fn count_tenants(&self, selection: Selection) -> Result<u64, DbError> {
        let count =
            db::interact(&self.pool, move |conn| Ok(tenants::count(conn, selection)?)).await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Calls `each` for every tenant of `selection`, in tenant order, one
    /// page in memory at a time; returns how many there were.
    pub async fn for_each_tenant(
        &self,
        selection: Selection,
        mut each: impl FnMut(&TenantId),
    ) -> Result<u64, DbError> {
        let mut after: Option<WalkKey> = None;
        let mut seen = 0;
        loop {
            let page = self.tenant_page(selection, after.take()).await?;
            let Some(last) = page.last().cloned() else {
                return Ok(seen);
            };
            for tenant in page
                .iter()
                .filter_map(|key| TenantId::parse(&key.tenant_id).ok())
            {
                each(&tenant);
                seen += 1;
            }
            after = Some(last);
        }
    }

    async fn tenant_page(
        &self,
        selection: Selection,
        after: Option<WalkKey>,
    ) -> Result<Vec<WalkKey>, DbError> {
        db::interact(&self.pool, move |conn| {
            Ok(tenants::page(conn, selection, after.as_ref(), PAGE)?)
        })
        .await
    }

    /// Applies `op` to every tenant of its selection with `concurrency`
    /// workers, calling `progress` after each tenant is done. Pace Stripe
    /// with a gateway `with_pacer`. Runs on the current (actix) local set.
    pub async fn run_bulk<Op: BulkOperation>(
        &self,
        op: Op,
        concurrency: usize,
        progress: impl Fn(&TenantId, Op::Outcome),
    ) -> Result<BulkTotals<Op::Outcome>, DbError> {
        let op = Rc::new(op);
        let (feed, queue) = mpsc::channel::<TenantId>(PAGE as usize);
        let queue = Rc::new(Mutex::new(queue));
        let deferred = Rc::new(RefCell::new(Vec::<Deferred>::new()));
        let deferrals = Rc::new(Cell::new(0u64));
        let read_failure = Rc::new(RefCell::new(None::<DbError>));

        let reader = {
            let (billing, selection, failure) =
                (self.clone(), op.selection(), read_failure.clone());
            tokio::task::spawn_local(async move {
                let mut after: Option<WalkKey> = None;
                loop {
                    let page = match billing.tenant_page(selection, after.take()).await {
                        Ok(page) => page,
                        Err(error) => {
                            *failure.borrow_mut() = Some(error);
                            return;
                        }
                    };
                    let Some(last) = page.last().cloned() else {
                        return;
                    };
                    for tenant in page
                        .iter()
                        .filter_map(|key| TenantId::parse(&key.tenant_id).ok())
                    {
                        if feed.send(tenant).await.is_err() {
                            return;
                        }
                    }
                    after = Some(last);
                }
            })
        };

        let (report, mut outcomes) = mpsc::unbounded_channel();
        let patience = self.claim_patience();
        for _ in 0..concurrency.max(1) {
            let (billing, op, queue, deferred, deferrals, report) = (
                self.clone(),
                op.clone(),
                queue.clone(),
                deferred.clone(),
                deferrals.clone(),
                report.clone(),
            );
            tokio::task::spawn_local(async move {
                loop {
                    let fresh = queue.lock().await.recv().await;
                    let (tenant, first_deferred) = match fresh {
                        Some(tenant) => (tenant, None),
                        None => {
                            // The stream is done: the tenants put back, in
                            // the order their holders' leases end.
                            let next = {
                                let mut deferred = deferred.borrow_mut();
                                let earliest =
                                    (0..deferred.len()).min_by_key(|&i| deferred[i].not_before);
                                earliest.map(|i| deferred.swap_remove(i))
                            };
                            let Some(next) = next else { break };
                            tokio::time::sleep_until(next.not_before).await;
                            (next.tenant, Some(next.first_deferred))
                        }
                    };
                    let outcome = match op.run(&billing, &tenant).await {
                        Step::Done(outcome) => outcome,
                        Step::Deferred { until } => {
                            let first = first_deferred.unwrap_or_else(Instant::now);
                            if first.elapsed() >= patience {
                                op.gave_up()
                            } else {
                                deferrals.set(deferrals.get() + 1);
                                deferred.borrow_mut().push(Deferred {
                                    tenant,
                                    not_before: instant_at(until),
                                    first_deferred: first,
                                });
                                continue;
                            }
                        }
                    };
                    if report.send((tenant, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(report);
        let mut totals = BulkTotals::default();
        while let Some((tenant, outcome)) = outcomes.recv().await {
            totals.add(outcome);
            progress(&tenant, outcome);
        }
        let _ = reader.await;
        if let Some(error) = read_failure.borrow_mut().take() {
            return Err(error);
        }
        totals.deferrals = deferrals.get();
        Ok(totals)
    }
}

/// The monotonic instant of a UTC wall-clock time (now if it has passed),
/// a little after it so that the lease has surely ended.
fn instant_at(at: NaiveDateTime) -> Instant {
    let wait = (at - Utc::now().naive_utc()).to_std().unwrap_or_default();
    Instant::now() + wait + std::time::Duration::from_millis(10)
}
