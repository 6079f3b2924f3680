//! Cache misses of the display read, batched.
//!
//! Why: a miss used to cost a hand-off to a blocking thread and back plus a
//! database round trip, per request. On a small machine under load those
//! context switches, not the query, were most of the cost. Here concurrent
//! misses queue up, and a few *drainers* (blocking tasks, each holding one
//! pooled connection through `db::interact`) take whatever is queued, read
//! all those rows in one query, answer each waiter with its own tenant's row,
//! and go on while the queue is not empty. An idle service reads one row per
//! query exactly as before; a busy one pays one hand-off and one round trip
//! per batch instead of per request.
//!
//! Only `Billing::state` (display) uses it; decisions read through `read_row`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::db::tenants::{self, TenantRecord};
use crate::db::{self, DbError, DbPool};
use crate::domain::TenantId;

/// Rows per query.
const MAX_BATCH: usize = 64;

type Answer = Result<Option<TenantRecord>, DbError>;

struct Waiter {
    tenant: TenantId,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    /// Drainers running now; changed only under the lock, so a waiter never
    /// queues behind a drainer that already decided to stop.
    drainers: usize,
}

pub struct StateReader {
    queue: Arc<Mutex<Queue>>,
    max_drainers: usize,
}

impl StateReader {
    /// At most `max_drainers` connections serve display misses at once.
    pub fn new(max_drainers: usize) -> StateReader {
        StateReader {
            queue: Arc::default(),
            max_drainers: max_drainers.max(1),
        }
    }

    /// The tenant's row, read in a batch with whatever else is waiting.
    pub async fn read(&self, pool: &DbPool, tenant: &TenantId) -> Answer {
        let (answer, answered) = oneshot::channel();
        let start_drainer = {
            let mut queue = lock(&self.queue);
            queue.waiters.push(Waiter {
                tenant: tenant.clone(),
                answer,
            });
            let start = queue.drainers < self.max_drainers;
            if start {
                queue.drainers += 1;
            }
            start
        };
        if start_drainer {
            // Detached: a cancelled request must not strand the others.
            tokio::task::spawn_local(drain(pool.clone(), self.queue.clone()));
        }
        answered.await.unwrap_or(Err(DbError::Aborted))
    }
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// One drainer: batches until the queue is empty. On a failure the batch is
/// put back (`db::interact` retries once on a lost connection); if it still
/// fails and no other drainer is left, every waiter gets the failure.
async fn drain(pool: DbPool, queue: Arc<Mutex<Queue>>) {
    let work_queue = queue.clone();
    let result = db::interact(&pool, move |conn| loop {
        let batch: Vec<Waiter> = {
            let mut queue = lock(&work_queue);
            if queue.waiters.is_empty() {
                queue.drainers -= 1;
                return Ok(());
            }
            let take = queue.waiters.len().min(MAX_BATCH);
            queue.waiters.drain(..take).collect()
        };
        let ids: Vec<&str> = batch.iter().map(|w| w.tenant.as_str()).collect();
        match tenants::find_many(conn, &ids) {
            Ok(rows) => {
                // Several waiters may ask for the same tenant.
                let rows: HashMap<String, TenantRecord> = rows
                    .into_iter()
                    .map(|row| (row.tenant_id.clone(), row))
                    .collect();
                for waiter in batch {
                    let row = rows.get(waiter.tenant.as_str()).cloned();
                    let _ = waiter.answer.send(Ok(row));
                }
            }
            Err(error) => {
                let mut queue = lock(&work_queue);
                let rest = std::mem::take(&mut queue.waiters);
                queue.waiters = batch;
                queue.waiters.extend(rest);
                return Err(error.into());
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
            tracing::warn!(error = %error, waiting = waiters.len(), "batched display read failed");
            for waiter in waiters {
                let _ = waiter.answer.send(Err(error.for_another_waiter()));
            }
        }
    }
}
