//! Stripe's error object (`{"error": {type, code, message, param}}`) with the HTTP
//! status Stripe pairs it with, plus the library-level [`SimError`].

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// An error answered over HTTP exactly as Stripe would shape it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    /// Value for the `Stripe-Should-Retry` header, when Stripe would send one.
    pub should_retry: Option<bool>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            should_retry: None,
        }
    }

    /// 400 `invalid_request_error` pointing at the offending parameter.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param.into()),
            ..Self::new(400, "invalid_request_error", message)
        }
    }

    /// 400 for a required parameter that was not sent.
    pub fn missing_param(param: &str) -> Self {
        ApiError {
            code: Some("parameter_missing"),
            ..Self::invalid(param, format!("Missing required param: {param}."))
        }
    }

    /// 404 `resource_missing` for an id in the URL.
    pub fn no_such(resource: &str, id: &str) -> Self {
        ApiError {
            code: Some("resource_missing"),
            param: Some("id".into()),
            ..Self::new(
                404,
                "invalid_request_error",
                format!("No such {resource}: '{id}'"),
            )
        }
    }

    /// 400 `resource_missing` for an id passed as a parameter (Stripe uses 400 here).
    pub fn no_such_param(resource: &str, id: &str, param: &str) -> Self {
        ApiError {
            code: Some("resource_missing"),
            param: Some(param.into()),
            ..Self::new(
                400,
                "invalid_request_error",
                format!("No such {resource}: '{id}'"),
            )
        }
    }

    /// 402 `card_error` for a charge the customer's card declined.
    pub fn card_declined() -> Self {
        ApiError {
            code: Some("card_declined"),
            ..Self::new(402, "card_error", "Your card was declined.")
        }
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            format!("Unrecognized request URL ({method}: {path})."),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    }

    pub fn idempotency_mismatch(key: &str) -> Self {
        Self::new(
            400,
            "idempotency_error",
            format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{key}' if you meant to \
                 execute a different request."
            ),
        )
    }

    pub fn idempotency_in_flight(key: &str) -> Self {
        ApiError {
            code: Some("idempotency_key_in_use"),
            should_retry: Some(true),
            ..Self::new(
                409,
                "idempotency_error",
                format!(
                    "There is currently another in-progress request using this \
                     Idempotency-Key ('{key}'). Please try again later."
                ),
            )
        }
    }

    pub fn rate_limited() -> Self {
        ApiError {
            code: Some("rate_limit"),
            should_retry: Some(true),
            ..Self::new(
                429,
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential \
                 backoff of your requests.",
            )
        }
    }

    /// The body an injected `status` fault answers with: the error Stripe would send
    /// for that status. The request was not executed, so retrying is always safe.
    pub fn injected(status: u16) -> Self {
        match status {
            429 => Self::rate_limited(),
            401 => Self::unauthorized(),
            402 => ApiError {
                message: "Your card was declined. (injected fault)".into(),
                ..Self::card_declined()
            },
            404 => ApiError {
                code: Some("resource_missing"),
                ..Self::new(
                    404,
                    "invalid_request_error",
                    "No such resource. (injected fault)",
                )
            },
            409 => ApiError {
                code: Some("lock_timeout"),
                should_retry: Some(true),
                ..Self::new(
                    409,
                    "invalid_request_error",
                    "This object cannot be accessed right now because another API request \
                     or Stripe process is currently accessing it. (injected fault)",
                )
            },
            s if s >= 500 => ApiError {
                should_retry: Some(true),
                ..Self::new(
                    s,
                    "api_error",
                    "An unknown error occurred while processing your request. (injected fault)",
                )
            },
            s => Self::new(
                s,
                "invalid_request_error",
                format!("Injected fault with status {s}."),
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut e = Map::new();
        if let Some(code) = self.code {
            e.insert("code".into(), json!(code));
            e.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        e.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            e.insert("param".into(), json!(param));
        }
        e.insert("type".into(), json!(self.kind));
        json!({ "error": e })
    }

    pub fn body(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.to_json()).unwrap_or_default())
    }
}

/// Errors of the library API (`SimHandle::complete_checkout`, …).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// No object with that id.
    #[error("no such {resource}: '{id}'")]
    NotFound { resource: &'static str, id: String },
    /// The object exists but is in a state that does not allow the operation.
    #[error("{0}")]
    InvalidState(String),
    /// A parameter was wrong.
    #[error("{0}")]
    Invalid(String),
    /// The customer's card declined the charge (`/_sim/customers/{id}/card`).
    #[error("{0}")]
    CardDeclined(String),
}
