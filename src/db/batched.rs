//! Concurrent database work of one kind, served in batches.
//!
//! Why: on a small machine under load, a hand-off to a blocking thread and a
//! round trip (or a transaction) per request cost more than the work itself.
//! Here concurrent requests queue up, and a few *drainers* (blocking tasks,
//! each holding one pooled connection through `db::interact`) take whatever
//! is queued, serve it with one call of the kind's `serve`, answer each
//! request, and go on while the queue is not empty. An idle service serves
//! one request per call exactly as before; a busy one pays one hand-off and
//! one round trip per batch instead of per request (group commit). Nothing
//! waits on a timer: a batch is whatever queued while the last one ran.
//!
//! Used by the display read's cache misses (billing/state_reader.rs) and by
//! usage metering's single events and reads (billing/usage_batches.rs).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{interact, DbConnection, DbError, DbPool};

/// One request's answer.
pub type Answer<A> = Result<A, DbError>;

/// What `serve` made of a batch: an answer per request, in order; or `Err`
/// when it did nothing that needs answering (a read that failed), so the
/// batch is put back and served again on another connection if this one was
/// lost (`db::interact`), and failed with the error otherwise.
pub type Served<A> = Result<Vec<Answer<A>>, DbError>;

type Serve<R, A> = dyn Fn(&mut DbConnection, &[R]) -> Served<A> + Send + Sync;

struct Waiter<R, A> {
    request: R,
    answer: oneshot::Sender<Answer<A>>,
}

struct Queue<R, A> {
    waiters: Vec<Waiter<R, A>>,
    /// Drainers running now; changed only under the lock, so a waiter never
    /// queues behind a drainer that already decided to stop.
    drainers: usize,
}

/// Requests of one kind, served in batches of up to `max_batch` by at most
/// `max_drainers` connections at once.
pub struct Batched<R, A> {
    queue: Arc<Mutex<Queue<R, A>>>,
    max_drainers: usize,
    max_batch: usize,
    serve: Arc<Serve<R, A>>,
}

impl<R: Send + 'static, A: Send + 'static> Batched<R, A> {
    pub fn new(
        max_drainers: usize,
        max_batch: usize,
        serve: impl Fn(&mut DbConnection, &[R]) -> Served<A> + Send + Sync + 'static,
    ) -> Batched<R, A> {
        Batched {
            queue: Arc::new(Mutex::new(Queue {
                waiters: Vec::new(),
                drainers: 0,
            })),
            max_drainers: max_drainers.max(1),
            max_batch: max_batch.max(1),
            serve: Arc::new(serve),
        }
    }

    /// `request`'s answer, served in a batch with whatever else is waiting.
    /// Must run on an actix (local task) runtime.
    pub async fn run(&self, pool: &DbPool, request: R) -> Answer<A> {
        let (answer, answered) = oneshot::channel();
        let start_drainer = {
            let mut queue = lock(&self.queue);
            queue.waiters.push(Waiter { request, answer });
            let start = queue.drainers < self.max_drainers;
            if start {
                queue.drainers += 1;
            }
            start
        };
        if start_drainer {
            // Detached: a cancelled request must not strand the others.
            tokio::task::spawn_local(drain(
                pool.clone(),
                self.queue.clone(),
                self.max_batch,
                self.serve.clone(),
            ));
        }
        answered.await.unwrap_or(Err(DbError::Aborted))
    }
}

fn lock<R, A>(queue: &Mutex<Queue<R, A>>) -> std::sync::MutexGuard<'_, Queue<R, A>> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// One drainer: batches until the queue is empty. A batch `serve` refused is
/// put back (`db::interact` runs the loop again on another connection when
/// this one was lost); if it still fails and no other drainer is left, every
/// waiter gets the failure.
async fn drain<R: Send + 'static, A: Send + 'static>(
    pool: DbPool,
    queue: Arc<Mutex<Queue<R, A>>>,
    max_batch: usize,
    serve: Arc<Serve<R, A>>,
) {
    let work_queue = queue.clone();
    let result = interact(&pool, move |conn| loop {
        let batch: Vec<Waiter<R, A>> = {
            let mut queue = lock(&work_queue);
            if queue.waiters.is_empty() {
                queue.drainers -= 1;
                return Ok(());
            }
            let take = queue.waiters.len().min(max_batch);
            queue.waiters.drain(..take).collect()
        };
        let (requests, answers): (Vec<R>, Vec<oneshot::Sender<Answer<A>>>) = batch
            .into_iter()
            .map(|waiter| (waiter.request, waiter.answer))
            .unzip();
        match serve(conn, &requests) {
            Ok(answered) => {
                debug_assert_eq!(answered.len(), answers.len(), "one answer per request");
                for (sender, answer) in answers.into_iter().zip(answered) {
                    let _ = sender.send(answer);
                }
            }
            Err(error) => {
                let mut queue = lock(&work_queue);
                let rest = std::mem::take(&mut queue.waiters);
                queue.waiters = requests
                    .into_iter()
                    .zip(answers)
                    .map(|(request, answer)| Waiter { request, answer })
                    .collect();
                queue.waiters.extend(rest);
                return Err(error);
            }
        }
    })
    .await;
    if let Err(error) = result {
        let mut queue = lock(&queue);
        queue.drainers -= 1;
        if queue.drainers == 0 {
            let waiters = std::mem::take(&mut queue.waiters);
            drop(queue);
            tracing::warn!(error = %error, waiting = waiters.len(), "batched database work failed");
            for waiter in waiters {
                let _ = waiter.answer.send(Err(error.for_another_waiter()));
            }
        }
    }
}
