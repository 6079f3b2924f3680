//! Response builders shared by the `/v1` pipeline, the control plane and the hosted
//! pages: Stripe's JSON answers (with `Request-Id` and `Stripe-Version`), Stripe's
//! error bodies, and plain responses. Kept apart so those modules depend on this one
//! instead of on each other.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::error::ApiError;
use crate::objects;

pub(crate) type Body = Full<Bytes>;

pub(crate) fn json_response(
    status: u16,
    body: Bytes,
    request_id: &str,
    version: Option<HeaderValue>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    h.insert(
        "stripe-version",
        version.unwrap_or_else(|| HeaderValue::from_static(objects::API_VERSION)),
    );
    resp
}

pub(crate) fn error_response(
    e: &ApiError,
    request_id: &str,
    version: Option<HeaderValue>,
) -> Response<Body> {
    let mut resp = json_response(e.status, e.body(), request_id, version);
    if let Some(retry) = e.should_retry {
        resp.headers_mut().insert(
            "stripe-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
    }
    resp
}

/// A plain response for the control plane and hosted pages.
pub(crate) fn simple_response(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
