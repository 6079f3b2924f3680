//! Extractors that let a handler say what it needs and nothing more: the
//! acting admin (for billing's audit log), and bodies and query strings that
//! are refused as problem+json before any handler runs: 400 malformed, 413
//! too large, 422 naming the field of a wrong shape or of a control character
//! in any string (`domain::has_control_character`), on every route alike.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use tracing_actix_web::RequestId;

use super::errors::shape_error;
use crate::auth::AdminCtx;
use crate::billing;
use crate::domain::{
    has_control_character, json_may_hold_control_character, TenantId, CONTROL_CHARACTER,
};
use crate::error::ApiError;

/// The admin who makes a write: the verified admin of the tenant in the
/// path (403 for a member) and the request's id, which billing's audit log
/// records next to the user.
pub struct Actor {
    admin: AdminCtx,
    request_id: String,
}

impl Actor {
    /// The tenant the write is for: the path's, which the token proved.
    pub fn tenant(&self) -> &TenantId {
        &self.admin.tenant_id
    }

    /// Who acts, as billing audits it (and the last fallback for a
    /// customer's email).
    pub fn audit(&self) -> billing::Actor<'_> {
        billing::Actor {
            user_id: &self.admin.user_id,
            request_id: Some(&self.request_id),
            email: self.admin.email.as_ref(),
        }
    }
}

impl FromRequest for Actor {
    type Error = actix_web::Error;
    type Future = Ready<Result<Actor, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin = AdminCtx::from_request(req, payload).into_inner();
        let request_id = RequestId::from_request(req, payload).into_inner();
        ready(match (admin, request_id) {
            (Ok(admin), Ok(request_id)) => Ok(Actor {
                admin,
                request_id: request_id.to_string(),
            }),
            (Err(refusal), _) => Err(refusal.into()),
            (_, Err(missing)) => Err(missing.into()),
        })
    }
}

/// A JSON body within the service-wide size limit (`server.max_body_bytes`,
/// the app's `PayloadConfig`): 400 for a wrong content type or bad syntax,
/// 413 past the limit, 422 for a wrong shape or a control character in any
/// string, naming the field (never the value).
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        parsed_body(req, payload, |req, body| json_body(req, body).map(Json))
    }
}

/// Reads the whole body (within the app's limit) and parses it with `parse`.
fn parsed_body<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    parse: fn(&HttpRequest, &[u8]) -> Result<T, ApiError>,
) -> Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>> {
    let body = web::Bytes::from_request(req, payload);
    let req = req.clone();
    Box::pin(async move {
        let body = body.await.map_err(body_error)?;
        Ok(parse(&req, &body)?)
    })
}

/// A body that may be left out: empty (or only whitespace) is
/// `T::default()`; anything else is refused exactly as `Json` refuses it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        parsed_body(req, payload, |req, body| {
            optional_json(req, body).map(OptionalJson)
        })
    }
}

/// The app-wide body reader's failure as a problem: 413 past the limit.
fn body_error(error: actix_web::Error) -> ApiError {
    match error.as_error::<actix_web::error::PayloadError>() {
        Some(actix_web::error::PayloadError::Overflow) => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest("the body could not be read".into()),
    }
}

fn optional_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(req, bytes)
}

/// A body of up to `LIMIT` bytes, for a route whose bodies may exceed the
/// service-wide limit; 413 problem+json past it.
async fn read_up_to(
    payload: Result<web::Payload, actix_web::Error>,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let payload = payload.map_err(|_| ApiError::BadRequest("the body could not be read".into()))?;
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::BadRequest("the body could not be read".into())),
        Err(_) => Err(ApiError::PayloadTooLarge),
    }
}

/// The raw body, up to `LIMIT` bytes (a Stripe webhook, whose signature
/// covers its exact bytes); 413 problem+json past it.
pub struct BytesUpTo<const LIMIT: usize>(pub web::Bytes);

impl<const LIMIT: usize> FromRequest for BytesUpTo<LIMIT> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Payload::from_request(req, payload).into_inner();
        Box::pin(async move { Ok(BytesUpTo(read_up_to(body, LIMIT).await?)) })
    }
}

/// A JSON body of up to `LIMIT` bytes, for a route whose bodies may exceed
/// the service-wide limit (a usage batch): 413 past it, otherwise refused
/// exactly as `Json` refuses a body.
pub struct JsonUpTo<T, const LIMIT: usize>(pub T);

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for JsonUpTo<T, LIMIT> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Payload::from_request(req, payload).into_inner();
        let req = req.clone();
        Box::pin(async move {
            let bytes = read_up_to(body, LIMIT).await?;
            Ok(JsonUpTo(json_body(&req, &bytes)?))
        })
    }
}

/// A JSON body read as bytes: content type and syntax are 400; a control
/// character in any string, or a wrong shape, is 422 naming the field.
fn json_body<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, ApiError> {
    if req.content_type() != "application/json" {
        return Err(ApiError::BadRequest(
            "the body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    if let Some(field) = field_with_control_character(bytes) {
        return Err(ApiError::invalid_field(&field, CONTROL_CHARACTER));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        if error.is_data() {
            ApiError::Validation(vec![shape_error(&error.to_string())])
        } else {
            ApiError::BadRequest("the body is not well-formed JSON".into())
        }
    })
}

/// The path (`billing_name`, `events[3].meter`) of the first string in a
/// JSON document that holds a control character; `None` when there is none
/// or the document is not JSON (the caller's parse says so). A key with one
/// is reported as its object (`body` at the top).
fn field_with_control_character(bytes: &[u8]) -> Option<String> {
    if !json_may_hold_control_character(bytes) {
        return None;
    }
    let document: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut path = String::new();
    find_control_character(&document, &mut path).then(|| match path.as_str() {
        "" => "body".to_owned(),
        _ => path,
    })
}

/// Depth first; `path` is left at the offending value when found.
fn find_control_character(value: &serde_json::Value, path: &mut String) -> bool {
    match value {
        serde_json::Value::String(text) => has_control_character(text),
        serde_json::Value::Array(items) => items.iter().enumerate().any(|(index, item)| {
            let length = path.len();
            path.push_str(&format!("[{index}]"));
            let found = find_control_character(item, path);
            if !found {
                path.truncate(length);
            }
            found
        }),
        serde_json::Value::Object(fields) => fields.iter().any(|(name, item)| {
            if has_control_character(name) {
                return true;
            }
            let length = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            let found = find_control_character(item, path);
            if !found {
                path.truncate(length);
            }
            found
        }),
        _ => false,
    }
}

/// A query string of `T`'s shape: 400 when it does not parse, 422 naming the
/// parameter when any value holds a control character.
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(query(req.query_string()).map(Query).map_err(Into::into))
    }
}

fn query<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    let malformed = || ApiError::BadRequest("the query string is not well-formed".into());
    let pairs = web::Query::<Vec<(String, String)>>::from_query(text).map_err(|_| malformed())?;
    for (name, value) in pairs.iter() {
        if has_control_character(name) {
            return Err(ApiError::invalid_field("query", CONTROL_CHARACTER));
        }
        if has_control_character(value) {
            return Err(ApiError::invalid_field(name, CONTROL_CHARACTER));
        }
    }
    web::Query::<T>::from_query(text)
        .map(web::Query::into_inner)
        .map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_holding_a_control_character_is_named() {
        let cases = [
            (
                r#"{"billing_email":"a@b.c","billing_name":"Acme\u0000"}"#,
                Some("billing_name"),
            ),
            (
                r#"{"events":[{"meter":"a"},{"meter":"b\n"}]}"#,
                Some("events[1].meter"),
            ),
            (r#"{"a":{"b":["x","\u007f"]}}"#, Some("a.b[1]")),
            ("{\"name\":\"C1 \u{85}\"}", Some("name")),
            (r#""\t""#, Some("body")),
            (r#"{"na\u0000me":"x"}"#, Some("body")),
            (r#"{"name":"Zo\u00eb \"quoted\" \\ back"}"#, None),
            (r#"{"name":"fine"}"#, None),
            (r#"{"broken":"\u0000"#, None),
        ];
        for (json, field) in cases {
            assert_eq!(
                field_with_control_character(json.as_bytes()).as_deref(),
                field,
                "{json}"
            );
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Page {
        starting_after: Option<String>,
    }

    #[test]
    fn a_query_parameter_with_a_control_character_is_named() {
        let error = query::<Page>("starting_after=in_1%00").unwrap_err();
        assert!(matches!(&error, ApiError::Validation(f) if f[0].field == "starting_after"));
        assert!(matches!(
            query::<Page>("x%0A=1"),
            Err(ApiError::Validation(_))
        ));
        assert_eq!(
            query::<Page>("starting_after=in_1")
                .unwrap()
                .starting_after
                .as_deref(),
            Some("in_1")
        );
        // Invalid UTF-8 is decoded lossily (U+FFFD), which is no control character.
        assert!(query::<Page>("starting_after=%FF").is_ok());
    }
}
