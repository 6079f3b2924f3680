//! Stopping an instance without stranding anyone (README, Operating it: SIGTERM;
//! docs/ARCHITECTURE.md, "Stopping on purpose").
//!
//! On SIGTERM the instance *drains*: `/readyz` answers 503 at once (the load
//! balancer stops sending), the listener stays open and in-flight requests
//! run to their end, each answered with `Connection: close`. At the shutdown
//! deadline (`server.shutdown_timeout_seconds`) the requests still running
//! are *cut*: their handlers are dropped and they are answered 503 with
//! `Retry-After`, never reset. Only then does the server stop listening.
//! Giving back the creation claims and job leases this instance still holds
//! happens after that, in `Application::run_until_stopped`, once no task of
//! this process can touch them any more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tokio::sync::watch;

use crate::error::ApiError;

/// Where the instance is in its life; shared by the middleware, `/readyz`
/// and the code that stops the server.
#[derive(Debug)]
pub struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    /// Signals "no request in flight" and "cut now" to whoever waits.
    changed: watch::Sender<()>,
    cut: AtomicBool,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            changed: watch::channel(()).0,
            cut: AtomicBool::new(false),
        }
    }
}

impl Drain {
    /// True from SIGTERM on: `/readyz` answers 503.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// SIGTERM arrived: stop being ready, keep serving what comes.
    pub fn begin(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.changed.send_replace(());
    }

    /// The deadline passed: every request still running (and any new one) is
    /// answered 503 at once.
    pub fn cut(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.cut.store(true, Ordering::SeqCst);
        self.changed.send_replace(());
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight, for at most `limit`; false on timeout.
    pub async fn idle(&self, limit: Duration) -> bool {
        let mut changes = self.changed.subscribe();
        tokio::time::timeout(limit, async {
            while self.in_flight() > 0 {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .is_ok()
    }

    fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    /// Resolves once the requests are cut.
    async fn cut_off(&self) {
        let mut changes = self.changed.subscribe();
        while !self.cut.load(Ordering::SeqCst) {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Counts one request in flight until dropped (answered or cut).
struct InFlight<'a>(&'a Drain);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.send_replace(());
        }
    }
}

/// App-wide middleware: counts requests in flight, closes connections while
/// draining, and answers 503 for a request cut off at the shutdown deadline
/// (as an error: the request cannot be cloned here without breaking routing,
/// and `echo_request_id` still stamps the answer with its request id).
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(drain) = req.app_data::<web::Data<Drain>>().cloned() else {
        return next.call(req).await;
    };
    let _in_flight = drain.enter();
    let mut response = tokio::select! {
        biased;
        response = next.call(req) => response?,
        () = drain.cut_off() => return Err(ApiError::ShuttingDown.into()),
    };
    if drain.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}
