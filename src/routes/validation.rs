//! Request-body parsing into domain types, with errors that name the field and
//! never echo the submitted value.

use crate::domain::{Email, Plan, PlanCode, RedirectUrl};
use crate::error::{ApiError, FieldError};
use crate::settings::Settings;

/// Runs validator rules; its errors carry the value (`params.value`), so only
/// the field name and our message are kept.
pub fn validated(body: &impl validator::Validate) -> Result<(), ApiError> {
    body.validate().map_err(|errors| {
        let mut fields: Vec<FieldError> = errors
            .field_errors()
            .into_iter()
            .map(|(field, problems)| {
                let message = problems
                    .first()
                    .and_then(|p| p.message.as_ref())
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "is invalid".into());
                FieldError::new(field.to_string(), message)
            })
            .collect();
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        ApiError::Validation(fields)
    })
}

pub fn parse_email(field: &str, value: &str) -> Result<Email, ApiError> {
    Email::parse(value).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

pub fn parse_plan(value: &str, settings: &Settings) -> Result<PlanCode, FieldError> {
    settings
        .catalog
        .parse(value)
        .map_err(|e| FieldError::new("plan", e.to_string()))
}

/// A seat count for `plan`: a whole number from 1 to the plan's
/// `limits.seats`, and only for a per-seat plan. `None` when absent.
pub fn parse_quantity(
    value: Option<&serde_json::Value>,
    plan: Option<&Plan>,
) -> Result<Option<u64>, FieldError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if plan.is_some_and(|p| !p.per_seat) {
        return Err(FieldError::new(
            "quantity",
            "applies only to a per-seat plan",
        ));
    }
    let max = plan.and_then(Plan::max_seats).unwrap_or(i64::MAX);
    match value.as_i64() {
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as u64)),
        Some(_) if max < i64::MAX => Err(FieldError::new(
            "quantity",
            format!("must be a whole number from 1 to {max}"),
        )),
        _ => Err(FieldError::new(
            "quantity",
            "must be a whole number of at least 1",
        )),
    }
}

pub fn parse_redirect(
    field: &str,
    value: Option<&str>,
    allowed_origins: &[String],
) -> Result<Option<RedirectUrl>, FieldError> {
    value
        .map(|v| RedirectUrl::parse(v, allowed_origins.iter().map(String::as_str)))
        .transpose()
        .map_err(|e| FieldError::new(field, e.to_string()))
}

/// `parse_redirect`, for a URL that falls back to `default` when omitted:
/// without a default either (production names its own), the request must
/// carry one, or Stripe would be handed an empty URL.
pub fn parse_redirect_or_default(
    field: &str,
    value: Option<&str>,
    allowed_origins: &[String],
    default: Option<&String>,
) -> Result<Option<RedirectUrl>, FieldError> {
    if value.is_none() && default.is_none() {
        return Err(FieldError::new(
            field,
            "is required: this deployment configures no default",
        ));
    }
    parse_redirect(field, value, allowed_origins)
}
