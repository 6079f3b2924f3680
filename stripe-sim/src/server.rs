//! The HTTP server (hyper, HTTP/1.1 with keep-alive) and the `/v1` request pipeline:
//! statistics → auth → rate limit → faults → idempotency → latency → execute →
//! delay/drop faults → answer. hyper is used directly because a `drop` fault must
//! close the connection without a single response byte: returning an error from the
//! service makes hyper do exactly that.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::faults::FaultKind;
use crate::http::{error_response, json_response, Body};
use crate::idempotency::Begin;
use crate::routes::{self, Endpoint};
use crate::state::Shared;
use crate::{api, control, form, ids, meter_gate, pages};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Returned by the service to make hyper drop the connection without answering.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until `shutdown` flips.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let conn_shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| dispatch(Arc::clone(&conn_shared), req));
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path.starts_with("/v1/") {
        api_request(shared, parts, body).await
    } else if path.starts_with("/_sim/") {
        let body = read_body(body).await.unwrap_or_default();
        Ok(control::handle(&shared, &parts, &body))
    } else if path.starts_with("/checkout/")
        || path.starts_with("/billing_portal/")
        || path.starts_with("/invoice/")
    {
        let body = read_body(body).await.unwrap_or_default();
        Ok(pages::handle(&shared, &parts, &body))
    } else {
        Ok(error_response(
            &ApiError::unrecognized_url(parts.method.as_str(), path),
            "req_none",
            None,
        ))
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| {
            ApiError::invalid(
                "body",
                "The request body could not be read or is too large.",
            )
        })
}

/// `Bearer <key>` or basic auth with the key as user name.
fn authorized(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        !rest.is_empty()
    } else if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .is_some_and(|s| !s.split(':').next().unwrap_or("").is_empty())
    } else {
        false
    }
}

/// Releases an idempotency key if the request is abandoned before finishing (the
/// client hung up during latency, a validation error, …).
struct KeyGuard<'a> {
    shared: &'a Shared,
    key: Option<String>,
}

impl KeyGuard<'_> {
    fn finish(&mut self, status: u16, body: &Bytes, request_id: &str) {
        if let Some(key) = self.key.take() {
            let mut idem = self.shared.idempotency.lock();
            // Stripe saves results of requests that ran; 4xx validation errors did not.
            if (200..300).contains(&status) || status >= 500 {
                idem.finish(&key, status, body.clone(), request_id);
            } else {
                idem.release(&key);
            }
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.idempotency.lock().release(&key);
        }
    }
}

async fn api_request(
    shared: Arc<Shared>,
    parts: Parts,
    body: Incoming,
) -> Result<Response<Body>, DropConnection> {
    let path = parts.uri.path();
    let (ep, id) = routes::route(&parts.method, path);
    shared.count_request(ep);
    shared.arrivals.record();
    let request_id = ids::new_id("req_", 14);
    let version = parts.headers.get("stripe-version").cloned();
    let respond_err = |e: &ApiError| error_response(e, &request_id, version.clone());

    if !authorized(&parts.headers) {
        return Ok(respond_err(&ApiError::unauthorized()));
    }
    if ep == Endpoint::Unknown {
        return Ok(respond_err(&ApiError::unrecognized_url(
            parts.method.as_str(),
            path,
        )));
    }
    if shared.rate_limited.load(Ordering::Relaxed) {
        let allowed = shared
            .rate_limiter
            .lock()
            .as_mut()
            .is_none_or(|b| b.try_take());
        if !allowed {
            return Ok(respond_err(&ApiError::rate_limited()));
        }
    }
    let fault = if shared.faults_active.load(Ordering::Relaxed) {
        let mut faults = shared.faults.lock();
        let f = faults.take(parts.method.as_str(), ep.template(), path);
        shared
            .faults_active
            .store(!faults.is_empty(), Ordering::Relaxed);
        f
    } else {
        None
    };
    if let Some(FaultKind::Status(status)) = fault {
        return Ok(respond_err(&ApiError::injected(status)));
    }

    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return Ok(respond_err(&e)),
    };
    let params = match form::parse_request(parts.uri.query(), &body) {
        Ok(p) => p,
        Err(e) => return Ok(respond_err(&e)),
    };
    // Held until the answer is written: one meter-event call per customer and meter.
    let _meter_pass = match meter_gate::admit(&shared, ep, &params) {
        Ok(pass) => pass,
        Err(e) => return Ok(respond_err(&e)),
    };

    let idem_key = (parts.method == Method::POST)
        .then(|| {
            parts
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
        })
        .flatten()
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let mut guard = KeyGuard {
        shared: &shared,
        key: None,
    };
    if let Some(key) = &idem_key {
        if key.len() > 255 {
            return Ok(respond_err(&ApiError::invalid(
                "Idempotency-Key",
                "Idempotency keys can be at most 255 characters long.",
            )));
        }
        let fingerprint = format!("{} {} {}", parts.method, path, params);
        let begin = shared
            .idempotency
            .lock()
            .begin(key, &fingerprint, shared.clock.now());
        match begin {
            Begin::Proceed => guard.key = Some(key.clone()),
            Begin::Mismatch => return Ok(respond_err(&ApiError::idempotency_mismatch(key))),
            Begin::InFlight => return Ok(respond_err(&ApiError::idempotency_in_flight(key))),
            Begin::Replay {
                status,
                body,
                request_id: original,
            } => {
                apply_late_fault(&fault).await?;
                let mut resp = json_response(status, body, &request_id, version);
                let h = resp.headers_mut();
                h.insert("idempotent-replayed", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(&original) {
                    h.insert("original-request", v);
                }
                if let Ok(v) = HeaderValue::from_str(key) {
                    h.insert("idempotency-key", v);
                }
                return Ok(resp);
            }
        }
    }

    let latency = shared.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let ctx = shared.ctx(Some(request_id.clone()), idem_key.clone());
    let (status, out, err) = match api::handle(&shared, ep, id, &params, &ctx) {
        Ok(b) => (200, b, None),
        Err(e) => (e.status, e.body(), Some(e)),
    };
    guard.finish(status, &out, &request_id);
    drop(guard);

    apply_late_fault(&fault).await?;
    let mut resp = json_response(status, out, &request_id, version);
    if let Some(retry) = err.and_then(|e| e.should_retry) {
        resp.headers_mut().insert(
            "stripe-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
    }
    if let Some(v) = idem_key
        .as_deref()
        .and_then(|k| HeaderValue::from_str(k).ok())
    {
        resp.headers_mut().insert("idempotency-key", v);
    }
    Ok(resp)
}

/// `delay_ms` holds a processed answer; `drop` discards it with the connection.
async fn apply_late_fault(fault: &Option<FaultKind>) -> Result<(), DropConnection> {
    match fault {
        Some(FaultKind::DelayMs(ms)) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Ok(())
        }
        Some(FaultKind::Drop) => Err(DropConnection),
        _ => Ok(()),
    }
}
