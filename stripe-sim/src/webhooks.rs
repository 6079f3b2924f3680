//! Webhook delivery: each event is POSTed to the configured endpoint with Stripe's
//! signature (`Stripe-Signature: t=<wall-clock now>,v1=<hex hmac-sha256(secret, "t.payload")>`),
//! in a background task, retried with exponential backoff until answered 2xx.
//! The signature's `t` is the real time of each attempt, as Stripe's is: receivers
//! check it against their own clock (async-stripe allows 300 s), so signing with
//! simulator time would make every delivery after `/_sim/clock/advance` stale.
//! The event itself keeps simulator time (`created`, the object's timestamps).
//! Deliveries of distinct events run concurrently, so they may arrive out of order,
//! as they do from Stripe.
//!
//! [`Webhooks`] owns everything delivery needs (endpoint, secret, retry policy, the
//! runtime its tasks run on); the store only hands it finished events, so this
//! module knows nothing of the store or of the shared state around it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;

use parking_lot::RwLock;

/// Longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 60_000;
/// Per-attempt timeout, like Stripe's.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Stripe-Signature` header value for `payload` signed at `timestamp`.
pub fn signature_header(secret: &str, timestamp: i64, payload: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Real Unix time in seconds, for the signature of a delivery attempt.
fn wall_clock_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Delivery counters, part of `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WebhookStats {
    /// Events queued or being retried.
    pub pending: u64,
    /// Events answered 2xx.
    pub delivered: u64,
    /// HTTP attempts made (including retries).
    pub attempts: u64,
    /// Attempts that got a non-2xx answer or no answer.
    pub failed_attempts: u64,
}

#[derive(Debug)]
pub(crate) struct Webhooks {
    url: RwLock<Option<String>>,
    secret: RwLock<String>,
    retry_base_ms: u64,
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
    pending: watch::Sender<u64>,
    delivered: AtomicU64,
    attempts: AtomicU64,
    failed: AtomicU64,
    /// Bumped by reset so in-flight retries of forgotten events stop.
    generation: AtomicU64,
}

impl Webhooks {
    pub(crate) fn new(
        url: Option<String>,
        secret: String,
        retry_base_ms: u64,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Webhooks {
            url: RwLock::new(url),
            secret: RwLock::new(secret),
            retry_base_ms,
            runtime,
            client: reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .build()
                .expect("reqwest client builds"),
            pending: watch::channel(0).0,
            delivered: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Where events go; `None` keeps them for `GET /v1/events` only.
    pub(crate) fn url(&self) -> Option<String> {
        self.url.read().clone()
    }

    pub(crate) fn set_url(&self, url: Option<String>) {
        *self.url.write() = url;
    }

    pub(crate) fn is_on(&self) -> bool {
        self.url.read().is_some()
    }

    pub(crate) fn secret(&self) -> String {
        self.secret.read().clone()
    }

    pub(crate) fn set_secret(&self, secret: String) {
        *self.secret.write() = secret;
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        WebhookStats {
            pending: *self.pending.borrow(),
            delivered: self.delivered.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            failed_attempts: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Abandons every queued delivery (reset).
    pub(crate) fn forget_all(&self) {
        self.pending.send_modify(|n| {
            self.generation.fetch_add(1, Ordering::SeqCst);
            *n = 0;
        });
    }

    /// Waits until nothing is pending; false on timeout.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut rx = self.pending.subscribe();
        let idle = tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await;
        matches!(idle, Ok(Ok(_)))
    }

    /// Marks one delivery finished, unless a reset already forgot it.
    fn done(&self, generation: u64) {
        self.pending.send_modify(|n| {
            if self.generation.load(Ordering::SeqCst) == generation {
                *n = n.saturating_sub(1);
            }
        });
    }
}

/// Queues delivery of `events` to the configured endpoint (if any) on the
/// simulator's runtime, one task per event.
pub(crate) fn enqueue(hooks: &Arc<Webhooks>, events: Vec<Value>) {
    let Some(url) = hooks.url() else {
        return;
    };
    for event in events {
        let payload = serde_json::to_string(&event).unwrap_or_default();
        let mut generation = 0;
        hooks.pending.send_modify(|n| {
            generation = hooks.generation.load(Ordering::SeqCst);
            *n += 1;
        });
        let task_hooks = Arc::clone(hooks);
        let url = url.clone();
        hooks
            .runtime
            .spawn(async move { deliver(task_hooks, url, payload, generation).await });
    }
}

async fn deliver(hooks: Arc<Webhooks>, url: String, payload: String, generation: u64) {
    let base = hooks.retry_base_ms.max(1);
    let mut attempt: u32 = 0;
    loop {
        if hooks.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let sig = signature_header(&hooks.secret(), wall_clock_now(), &payload);
        hooks.attempts.fetch_add(1, Ordering::Relaxed);
        let result = hooks
            .client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", sig)
            .body(payload.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                hooks.delivered.fetch_add(1, Ordering::Relaxed);
                hooks.done(generation);
                return;
            }
            Ok(resp) => {
                tracing::debug!(status = %resp.status(), %url, "webhook attempt rejected");
            }
            Err(err) => {
                tracing::debug!(%err, %url, "webhook attempt failed");
            }
        }
        hooks.failed.fetch_add(1, Ordering::Relaxed);
        let backoff = base
            .saturating_mul(1u64 << attempt.min(20))
            .min(MAX_BACKOFF_MS.max(base));
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(backoff)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_t_dot_payload() {
        // Reference computed independently: printf '1.{}' | openssl dgst -sha256 -hmac whsec_x
        assert_eq!(
            signature_header("whsec_x", 1, "{}"),
            "t=1,v1=36ee2f7498f0c1777d1312b2a7361947fe5ad31223be30d0c62421f4ca753401"
        );
    }
}
