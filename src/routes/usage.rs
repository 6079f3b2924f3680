//! `…/usage`: the host application's backend records its tenant's usage
//! (one event or a batch), asks whether more would fit, and anyone of the
//! tenant reads each meter's standing in the current period.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::JsonUpTo;
use super::problems::{BodyProblems, TenantPath, TenantProblems};
use super::state::MeterView;
use crate::auth::{TenantCtx, UsageCtx};
use crate::billing::{Billing, LedgerEvent, Recorded, UsageEvent};
use crate::domain::{check_timestamp, PlanCatalog, UsageKey, MAX_QUANTITY};
use crate::error::{ApiError, FieldError, LimitReached};

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 1_000;
/// A batch's body limit: a thousand events of the longest fields fit.
const MAX_BATCH_BODY: usize = 1024 * 1024;

/// One usage event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBody {
    /// A configured meter's id (`GET …/usage` lists them).
    #[schema(value_type = String, example = "api_calls")]
    meter: Option<Value>,
    /// A whole number from 1 to 10^12 (a counting meter counts the event once).
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000_000_000_i64, example = 3)]
    quantity: Option<Value>,
    /// The host's key for this event: a retry with the same key is counted
    /// once. 1–100 characters.
    #[schema(value_type = String, min_length = 1, max_length = 100, example = "req_8f2c")]
    idempotency_key: Option<Value>,
    /// When it happened (RFC 3339), from 35 days back to 5 minutes ahead;
    /// default now. It decides the period the event counts in.
    #[schema(value_type = Option<String>, format = DateTime)]
    timestamp: Option<Value>,
}

/// Up to 1,000 events, recorded in order in one transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatchBody {
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<UsageBody>,
}

/// `POST …/usage/check`: would this much more fit now?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageCheckBody {
    #[schema(value_type = String, example = "api_calls")]
    meter: Option<Value>,
    #[schema(value_type = i64, minimum = 1, example = 1)]
    quantity: Option<Value>,
}

/// A recorded event and the period total it left.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageAnswer {
    pub idempotency_key: String,
    pub meter: String,
    pub quantity: i64,
    pub timestamp: DateTime<Utc>,
    /// True when the key was recorded before: this is that recording's answer.
    pub duplicate: bool,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// The period's total right after this event.
    pub used: i64,
    /// `null`: unlimited.
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
}

impl UsageAnswer {
    fn of(event: &LedgerEvent, duplicate: bool) -> UsageAnswer {
        UsageAnswer {
            idempotency_key: event.key.clone(),
            meter: event.meter.clone(),
            quantity: event.quantity,
            timestamp: event.occurred_at.and_utc(),
            duplicate,
            period_start: event.period.start.and_utc(),
            period_end: event.period.end.and_utc(),
            used: event.used_after,
            limit: event.limit,
            remaining: event.limit.map(|limit| (limit - event.used_after).max(0)),
        }
    }
}

/// One event's result in a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// Its position in the request.
    pub index: usize,
    pub idempotency_key: String,
    /// `recorded`, `duplicate` (recorded before: the original's figures),
    /// `refused` (past a blocking limit: not recorded) or `conflict` (the
    /// key was recorded with another meter or quantity).
    #[schema(pattern = "^(recorded|duplicate|refused|conflict)$")]
    pub status: &'static str,
    pub meter: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub used: i64,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
}

/// `POST …/usage/batch`'s answer: a result per event, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
    pub recorded: usize,
    pub duplicates: usize,
    pub refused: usize,
    pub conflicts: usize,
}

/// `GET …/usage`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageList {
    pub meters: Vec<MeterView>,
}

/// `POST …/usage/check`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckAnswer {
    pub meter: String,
    /// Whether recording the quantity now would be admitted.
    pub allowed: bool,
    pub used: i64,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub period_end: DateTime<Utc>,
}

/// Records one usage event, committed before the answer. 201 when recorded
/// now, 200 when its key was recorded before (`duplicate: true`, with that
/// recording's figures); 402 past a blocking limit (nothing recorded); 409
/// when the key was recorded with another meter or quantity.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/usage", tag = "usage",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = UsageBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = UsageAnswer),
        (status = 200, description = "Recorded before under this key: the original answer", body = UsageAnswer),
        (status = 402, description = "Past the plan's blocking limit: not recorded (`limit`, `used`, `remaining`)", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 409, description = "The key was recorded with another meter or quantity", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, TenantProblems,
    ))]
pub async fn post_usage(
    ctx: UsageCtx,
    billing: web::Data<Billing>,
    body: web::Json<UsageBody>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now().naive_utc();
    let event = parse_event(&body, "", billing.catalog(), now).map_err(ApiError::Validation)?;
    let mut recorded = billing.record_usage(&ctx.tenant_id, vec![event]).await?;
    match recorded.pop().expect("one event, one result") {
        Recorded::Accepted(event) => {
            Ok(HttpResponse::Created().json(UsageAnswer::of(&event, false)))
        }
        Recorded::Duplicate(event) => Ok(HttpResponse::Ok().json(UsageAnswer::of(&event, true))),
        Recorded::KeyConflict(_) => Err(ApiError::Conflict(
            "this idempotency_key was recorded with another meter or quantity; \
             use a new key for a new event"
                .into(),
        )),
        Recorded::Refused {
            meter,
            period,
            used,
            limit,
        } => Err(ApiError::LimitReached(LimitReached {
            meter,
            limit,
            used,
            remaining: (limit - used).max(0),
            period_end: period.end.and_utc(),
        })),
    }
}

/// Records up to 1,000 events in order, in one transaction: each is
/// recorded, a duplicate, refused past a blocking limit or a key conflict,
/// as `POST …/usage` would answer it alone. Any invalid event fails the
/// whole batch with 422 (`errors[].field` = `events[i].field`) and records
/// nothing.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/usage/batch", tag = "usage",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = UsageBatchBody, content_type = "application/json", description = "Up to 1,000 events; the body may be up to 1 MiB"),
    responses(
        (status = 200, description = "A result per event, in order", body = BatchAnswer),
        BodyProblems, TenantProblems,
    ))]
pub async fn post_usage_batch(
    ctx: UsageCtx,
    billing: web::Data<Billing>,
    JsonUpTo(body): JsonUpTo<UsageBatchBody, MAX_BATCH_BODY>,
) -> Result<HttpResponse, ApiError> {
    if body.events.is_empty() || body.events.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let now = Utc::now().naive_utc();
    let mut events = Vec::with_capacity(body.events.len());
    let mut errors = Vec::new();
    for (index, event) in body.events.iter().enumerate() {
        match parse_event(event, &format!("events[{index}]."), billing.catalog(), now) {
            Ok(event) => events.push(event),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let keys: Vec<String> = events.iter().map(|e| e.key.to_string()).collect();
    let recorded = billing.record_usage(&ctx.tenant_id, events).await?;
    let mut answer = BatchAnswer {
        results: Vec::with_capacity(recorded.len()),
        recorded: 0,
        duplicates: 0,
        refused: 0,
        conflicts: 0,
    };
    for (index, (outcome, key)) in recorded.iter().zip(keys).enumerate() {
        let (status, event) = match outcome {
            Recorded::Accepted(event) => {
                answer.recorded += 1;
                ("recorded", event)
            }
            Recorded::Duplicate(event) => {
                answer.duplicates += 1;
                ("duplicate", event)
            }
            Recorded::KeyConflict(event) => {
                answer.conflicts += 1;
                ("conflict", event)
            }
            Recorded::Refused {
                meter,
                period,
                used,
                limit,
            } => {
                answer.refused += 1;
                answer.results.push(BatchResult {
                    index,
                    idempotency_key: key,
                    status: "refused",
                    meter: meter.clone(),
                    period_start: period.start.and_utc(),
                    period_end: period.end.and_utc(),
                    used: *used,
                    limit: Some(*limit),
                    remaining: Some((limit - used).max(0)),
                });
                continue;
            }
        };
        let figures = UsageAnswer::of(event, status != "recorded");
        answer.results.push(BatchResult {
            index,
            idempotency_key: key,
            status,
            meter: figures.meter,
            period_start: figures.period_start,
            period_end: figures.period_end,
            used: figures.used,
            limit: figures.limit,
            remaining: figures.remaining,
        });
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Whether `quantity` more would be admitted now, without recording it.
/// Advisory: only recording consumes the limit.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/usage/check", tag = "usage",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = UsageCheckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Whether it would fit, and the meter's standing", body = CheckAnswer),
        BodyProblems, TenantProblems,
    ))]
pub async fn post_usage_check(
    ctx: UsageCtx,
    billing: web::Data<Billing>,
    body: web::Json<UsageCheckBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let meter = parse_meter(body.meter.as_ref(), "meter", billing.catalog())
        .map_err(|e| errors.push(e))
        .ok();
    let quantity = parse_usage_quantity(body.quantity.as_ref(), "quantity")
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(meter), Some(quantity)) = (meter, quantity) else {
        return Err(ApiError::Validation(errors));
    };
    let check = billing
        .check_usage(&ctx.tenant_id, &meter, quantity)
        .await?;
    Ok(HttpResponse::Ok().json(CheckAnswer {
        meter,
        allowed: check.allowed,
        used: check.usage.used,
        limit: check.usage.allowance.limit,
        remaining: check.usage.remaining(),
        period_end: check.usage.period.end.and_utc(),
    }))
}

/// Each meter's standing in the current period: used, limit, remaining.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/usage", tag = "usage",
    params(TenantPath), security(("bearer" = [])),
    responses(
        (status = 200, description = "Every meter, by id", body = UsageList),
        TenantProblems,
    ))]
pub async fn get_usage(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let usage = billing.usage(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(UsageList {
        meters: usage.iter().map(MeterView::from).collect(),
    }))
}

/// One event's fields, each checked; the errors name `{prefix}{field}`.
fn parse_event(
    body: &UsageBody,
    prefix: &str,
    catalog: &PlanCatalog,
    now: NaiveDateTime,
) -> Result<UsageEvent, Vec<FieldError>> {
    let field = |name: &str| format!("{prefix}{name}");
    let mut errors = Vec::new();
    let meter = parse_meter(body.meter.as_ref(), &field("meter"), catalog)
        .map_err(|e| errors.push(e))
        .ok();
    let quantity = parse_usage_quantity(body.quantity.as_ref(), &field("quantity"))
        .map_err(|e| errors.push(e))
        .ok();
    let key = match body.idempotency_key.as_ref().and_then(Value::as_str) {
        Some(key) => UsageKey::parse(key)
            .map_err(|e| errors.push(FieldError::new(field("idempotency_key"), e.to_string())))
            .ok(),
        None => {
            errors.push(FieldError::new(
                field("idempotency_key"),
                "is required: a string of 1 to 100 characters",
            ));
            None
        }
    };
    let timestamp = match body.timestamp.as_ref().filter(|v| !v.is_null()) {
        None => None,
        Some(value) => match value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        {
            Some(at) => {
                let at = at.naive_utc();
                check_timestamp(at, now)
                    .map_err(|e| errors.push(FieldError::new(field("timestamp"), e.to_string())))
                    .ok()
                    .map(|_| at)
            }
            None => {
                errors.push(FieldError::new(
                    field("timestamp"),
                    "must be an RFC 3339 date-time",
                ));
                None
            }
        },
    };
    match (meter, quantity, key) {
        (Some(meter), Some(quantity), Some(key)) if errors.is_empty() => Ok(UsageEvent {
            meter,
            quantity,
            key,
            timestamp,
        }),
        _ => Err(errors),
    }
}

fn parse_meter(
    value: Option<&Value>,
    field: &str,
    catalog: &PlanCatalog,
) -> Result<String, FieldError> {
    match value.and_then(Value::as_str) {
        Some(id) if catalog.meter(id).is_some() => Ok(id.to_owned()),
        Some(_) => Err(FieldError::new(field, "is not a meter of this service")),
        None => Err(FieldError::new(field, "is required: a meter's id")),
    }
}

/// A JSON integer from 1 to `MAX_QUANTITY`: not a string, not a fraction,
/// not a number too large to be exact.
fn parse_usage_quantity(value: Option<&Value>, field: &str) -> Result<i64, FieldError> {
    match value.and_then(Value::as_i64) {
        Some(n) if (1..=MAX_QUANTITY).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            field,
            format!("must be a whole number from 1 to {MAX_QUANTITY}"),
        )),
    }
}
