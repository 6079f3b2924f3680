//! One Stripe request budget for every process that shares the database
//! (docs/ARCHITECTURE.md, "One Stripe budget").
//!
//! Every attempt at Stripe first takes a *send slot* (`domain::SlotClock`:
//! `per_second` slots in each whole second, evenly spaced). Slots come from
//! a `SlotSource` shared by all processes (the `stripe_budget` row, booked by
//! `billing`), a batch at a time: the callers waiting in this process when a
//! booking is made share it, so a busy process books once per batch, not
//! once per request. Inside the process, an interactive caller (someone
//! waiting on an HTTP answer: checkout, portal, plan change) always takes
//! the next slot before background work (jobs, webhooks, sync, backfill,
//! usage forwarding); across processes, background work only books slots
//! nobody has booked ahead of now, so it uses what interactive work leaves.
//!
//! Background work says so by running inside `Priority::Background.scope(…)`;
//! everything else is interactive.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::domain::{Booking, SlotAsk, SlotClock};

/// Who waits for a Stripe call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// A person waits on the answer (checkout, portal, plan change, seats,
    /// invoices, a sync from the settings page): goes first.
    Interactive,
    /// Work nobody waits on right now: outbox jobs, webhook re-reads,
    /// `sync --all`, `backfill-customers`, the startup price check, usage
    /// forwarding. Uses the slots interactive work leaves.
    Background,
}

tokio::task_local! {
    static PRIORITY: Priority;
}

impl Priority {
    /// The priority of the running task: `Interactive` unless it runs
    /// inside `Priority::Background.scope(…)`.
    pub fn current() -> Priority {
        PRIORITY.try_with(|p| *p).unwrap_or(Priority::Interactive)
    }

    /// Runs `work` with every Stripe call it makes (in this task) at this
    /// priority. A background worker wraps its loop in it:
    /// `Priority::Background.scope(async { … }).await`.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        PRIORITY.scope(self, work).await
    }

    fn index(self) -> usize {
        match self {
            Priority::Interactive => 0,
            Priority::Background => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Background => "background",
        }
    }
}

/// A future the source answers with (not `Send`: it runs on the caller's task).
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + 'a>>;

/// Where slots are booked: the database, shared by every process.
pub trait SlotSource: Send + Sync {
    /// Books up to `ask.want` slots from `ask.earliest` on.
    fn book(&self, ask: SlotAsk) -> SourceFuture<'_, Booking>;
    /// Nobody sends for `slots` slots from `from` on (Stripe said 429).
    fn pause(&self, from: i64, slots: i64) -> SourceFuture<'_, ()>;
}

/// Why no slot was had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// More interactive calls queue than the budget serves within the
    /// wait limit: try again after this long.
    Saturated { retry_after: Duration },
    /// The shared budget could not be booked (the database failed).
    Unavailable(String),
}

/// The budget of one process.
pub struct Budget {
    clock: SlotClock,
    source: Arc<dyn SlotSource>,
    /// Interactive callers wait at most this long for a slot.
    max_wait: Duration,
    state: Mutex<State>,
    changed: Notify,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("per_second", &self.clock.per_second())
            .finish()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Booked slots not handed out yet, ascending.
    slots: VecDeque<i64>,
    /// A booking is under way (only one at a time per process).
    booking: bool,
    /// Callers waiting for a slot, by priority.
    waiting: [u32; 2],
    /// Background work may not book before this slot (others booked ahead).
    background_blocked_until: i64,
    /// Slots booked and never used (their time passed), for the log.
    wasted: u64,
}

/// A background booking takes at most this fraction of a second's slots,
/// so an interactive caller behind it waits at most that long.
const BACKGROUND_BATCH_DIVISOR: u32 = 10;
/// Timers wake up to a millisecond or two late; a slot is usable that long
/// at least. (Above 170 requests per second this lets a request slip into
/// the next second by those few milliseconds.)
const MIN_LATENESS_US: i64 = 3_000;

enum Next {
    Take(i64),
    Wait {
        until: Option<i64>,
    },
    Book {
        background: bool,
        want: u32,
        earliest: i64,
    },
}

impl Budget {
    pub fn new(per_second: u32, source: Arc<dyn SlotSource>, max_wait: Duration) -> Budget {
        Budget {
            clock: SlotClock::new(per_second),
            source,
            max_wait,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    pub fn per_second(&self) -> u32 {
        self.clock.per_second()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How late a slot may still be used: half a slot (its neighbours stay
    /// half a slot away), but never less than timers' own lateness (a few
    /// milliseconds), or a fast budget's slots would all be missed.
    fn lateness(&self) -> i64 {
        (self.clock.width_us() / 2).max(MIN_LATENESS_US)
    }

    /// The first slot a caller can still use now: the one just begun if it
    /// is not too late for it, else the next.
    fn earliest(&self, now_us: i64) -> i64 {
        let current = self.clock.at_or_before(now_us);
        if now_us - self.clock.time_us(current) < self.lateness() {
            current
        } else {
            current + 1
        }
    }

    /// Waits for this caller's send slot; `priority` decides who goes first.
    pub async fn acquire(&self, priority: Priority) -> Result<(), Refusal> {
        loop {
            let slot = self.take(priority).await?;
            let at = self.clock.time_us(slot);
            let now = now_us();
            if at > now {
                tokio::time::sleep(Duration::from_micros((at - now) as u64)).await;
            }
            // Woken too late (a stalled runtime): the slot's neighbours may
            // be near; take another rather than crowd them.
            if now_us() - at < self.lateness() {
                return Ok(());
            }
            self.lock().wasted += 1;
        }
    }

    /// Stripe answered 429 although the budget was kept: pause every
    /// process for half a second (another application may share the
    /// account, or the budget is set above the account's limit).
    pub async fn throttled(&self) {
        let from = self.earliest(now_us());
        let half = i64::from(self.clock.per_second() / 2).max(1);
        if let Err(error) = self.source.pause(from, half).await {
            tracing::warn!(error = %error, "could not pause the shared Stripe budget after a 429");
        }
        let mut state = self.lock();
        state.slots.clear();
        state.background_blocked_until = state.background_blocked_until.max(from + half);
        drop(state);
        self.changed.notify_waiters();
    }

    async fn take(&self, priority: Priority) -> Result<i64, Refusal> {
        let _waiting = Waiting::new(self, priority);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = self.next_step(priority);
            match next {
                Next::Take(slot) => return Ok(slot),
                Next::Wait { until: None } => notified.await,
                Next::Wait { until: Some(slot) } => {
                    let wait = (self.clock.time_us(slot) - now_us()).max(0) as u64;
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep(Duration::from_micros(wait)) => {}
                    }
                }
                Next::Book {
                    background,
                    want,
                    earliest,
                } => {
                    let booking = InFlight(self);
                    let max_ahead = (self.max_wait.as_micros() as i64) / self.clock.width_us();
                    let result = self
                        .source
                        .book(SlotAsk {
                            earliest,
                            want,
                            background,
                            max_ahead: max_ahead.max(1),
                        })
                        .await;
                    let mut state = self.lock();
                    match result {
                        Ok(Booking::Granted { first, count }) => {
                            state.slots.extend(first..first + i64::from(count));
                        }
                        Ok(Booking::Busy { free_at }) => {
                            state.background_blocked_until = free_at;
                        }
                        Ok(Booking::TooFar { free_at }) => {
                            drop(state);
                            drop(booking);
                            let wait = (self.clock.time_us(free_at) - now_us()).max(1_000_000);
                            return Err(Refusal::Saturated {
                                retry_after: Duration::from_micros(wait as u64),
                            });
                        }
                        Err(error) => {
                            drop(state);
                            drop(booking);
                            return Err(Refusal::Unavailable(error));
                        }
                    }
                    drop(state);
                    drop(booking);
                }
            }
        }
    }

    /// Under the lock: take a slot, wait, or book.
    fn next_step(&self, priority: Priority) -> Next {
        let mut state = self.lock();
        let earliest = self.earliest(now_us());
        while state.slots.front().is_some_and(|slot| *slot < earliest) {
            state.slots.pop_front();
            state.wasted += 1;
        }
        let interactive_waiting = state.waiting[Priority::Interactive.index()] > 0;
        let may_take = priority == Priority::Interactive || !interactive_waiting;
        if may_take {
            if let Some(slot) = state.slots.pop_front() {
                return Next::Take(slot);
            }
        }
        if state.booking || (!may_take && !state.slots.is_empty()) {
            return Next::Wait { until: None };
        }
        if !interactive_waiting && state.background_blocked_until > earliest {
            return Next::Wait {
                until: Some(state.background_blocked_until),
            };
        }
        state.booking = true;
        if interactive_waiting {
            Next::Book {
                background: false,
                want: state.waiting[Priority::Interactive.index()].max(1),
                earliest,
            }
        } else {
            // A tenth of a second's slots at once: background callers come
            // one after another (paced), and one booking serves them all;
            // the slots nobody takes in time are simply not used.
            let batch = (self.clock.per_second() / BACKGROUND_BATCH_DIVISOR).max(1);
            Next::Book {
                background: true,
                want: batch,
                earliest,
            }
        }
    }
}

/// Counts a caller as waiting until it has its slot (or gave up).
struct Waiting<'a> {
    budget: &'a Budget,
    priority: Priority,
}

impl<'a> Waiting<'a> {
    fn new(budget: &'a Budget, priority: Priority) -> Waiting<'a> {
        budget.lock().waiting[priority.index()] += 1;
        Waiting { budget, priority }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.waiting[self.priority.index()] -= 1;
        drop(state);
        // A background caller may now take the slots it was holding back for.
        self.budget.changed.notify_waiters();
    }
}

/// Marks the booking done however it ends (a cancelled caller included).
struct InFlight<'a>(&'a Budget);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().booking = false;
        self.0.changed.notify_waiters();
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared timeline in memory, counting bookings.
    #[derive(Default)]
    struct Timeline {
        next: Mutex<i64>,
        bookings: Mutex<u32>,
    }

    impl SlotSource for Timeline {
        fn book(&self, ask: SlotAsk) -> SourceFuture<'_, Booking> {
            let SlotAsk {
                earliest,
                want,
                background,
                max_ahead,
            } = ask;
            Box::pin(async move {
                *self.bookings.lock().unwrap() += 1;
                let mut next = self.next.lock().unwrap();
                let first = (*next).max(earliest);
                if background && *next > earliest {
                    return Ok(Booking::Busy { free_at: *next });
                }
                if !background && first > earliest + max_ahead {
                    return Ok(Booking::TooFar { free_at: first });
                }
                *next = first + i64::from(want);
                Ok(Booking::Granted { first, count: want })
            })
        }

        fn pause(&self, from: i64, slots: i64) -> SourceFuture<'_, ()> {
            Box::pin(async move {
                let mut next = self.next.lock().unwrap();
                *next = (*next).max(from) + slots;
                Ok(())
            })
        }
    }

    fn budget(per_second: u32, timeline: &Arc<Timeline>) -> Arc<Budget> {
        Arc::new(Budget::new(
            per_second,
            timeline.clone(),
            Duration::from_secs(10),
        ))
    }

    /// Two processes on one timeline never send more than the budget in a
    /// second, and concurrent callers share bookings.
    #[tokio::test]
    async fn two_processes_share_one_budget() {
        let timeline = Arc::new(Timeline::default());
        let (a, b) = (budget(50, &timeline), budget(50, &timeline));
        let started = std::time::Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let calls = (0..100).map(|i| {
            let (process, sent) = (if i % 2 == 0 { a.clone() } else { b.clone() }, sent.clone());
            let priority = if i % 3 == 0 {
                Priority::Interactive
            } else {
                Priority::Background
            };
            async move {
                process.acquire(priority).await.unwrap();
                sent.lock().unwrap().push(now_us());
            }
        });
        futures_util::future::join_all(calls).await;
        // 100 requests at 50/s: about two seconds.
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let mut per_second = std::collections::BTreeMap::new();
        for t in sent.lock().unwrap().iter() {
            *per_second.entry(t / 1_000_000).or_insert(0) += 1;
        }
        assert!(per_second.values().all(|n| *n <= 50), "{per_second:?}");
        let bookings = *timeline.bookings.lock().unwrap();
        assert!(bookings < 100, "{bookings} bookings for 100 requests");
    }

    /// With background work queued far beyond the budget, an interactive
    /// caller goes out within one background batch.
    #[tokio::test]
    async fn interactive_calls_overtake_background_work() {
        let timeline = Arc::new(Timeline::default());
        let (a, b) = (budget(20, &timeline), budget(20, &timeline));
        let background = futures_util::future::join_all((0..40).map(|i| {
            let process = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move { process.acquire(Priority::Background).await.unwrap() }
        }));
        let interactive = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = std::time::Instant::now();
            b.acquire(Priority::Interactive).await.unwrap();
            started.elapsed()
        };
        // 40 background calls take two seconds at 20/s; the interactive one
        // is not queued behind them.
        let waited = tokio::select! {
            waited = interactive => waited,
            _ = background => panic!("the background work finished first"),
        };
        // A background batch is 2 slots (100 ms) at 20/s, plus a slot.
        assert!(waited < Duration::from_millis(250), "waited {waited:?}");
    }

    #[tokio::test]
    async fn a_queue_too_long_is_refused_with_a_wait() {
        let timeline = Arc::new(Timeline::default());
        *timeline.next.lock().unwrap() = SlotClock::new(10).at_or_after(now_us()) + 1000;
        let budget = Arc::new(Budget::new(10, timeline.clone(), Duration::from_secs(1)));
        match budget.acquire(Priority::Interactive).await {
            Err(Refusal::Saturated { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(90), "{retry_after:?}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn background_is_the_default_only_inside_its_scope() {
        assert_eq!(Priority::current(), Priority::Interactive);
        Priority::Background
            .scope(async {
                assert_eq!(Priority::current(), Priority::Background);
            })
            .await;
    }
}
