//! From a verified token's claims to an `Identity`, for any identity
//! provider's claim shapes: Clerk's `o.id` / `o.rol` or `org_role:
//! "org:admin"`, Auth0's `https://app.example/tenant`, Keycloak's
//! `realm_access.roles`.

use serde_json::{Map, Value};

use super::TokenError;
use crate::domain::{Email, Role, TenantId};
use crate::settings::AuthSettings;

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub tenant_id: TenantId,
    /// The token's `sub`: the acting user, recorded in the audit log.
    pub user_id: String,
    pub role: Role,
    /// A role in `auth.usage_roles`: may record the tenant's usage.
    pub may_record_usage: bool,
    /// A claimed email; used only as the last fallback for a customer's email.
    pub email: Option<Email>,
    pub email_verified: bool,
}

/// Where the tenant and the role are, and which roles are admin.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    tenant_claim: String,
    role_claim: String,
    admin_roles: Vec<String>,
    usage_roles: Vec<String>,
}

impl ClaimRules {
    pub fn from_settings(settings: &AuthSettings) -> ClaimRules {
        ClaimRules {
            tenant_claim: settings.tenant_claim.clone(),
            role_claim: settings.role_claim.clone(),
            admin_roles: trimmed(&settings.admin_roles),
            usage_roles: trimmed(&settings.usage_roles),
        }
    }

    /// The identity the claims prove. The signature, `exp` and `sub`'s
    /// presence were checked by the verifier.
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, TokenError> {
        let user_id = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::Invalid)?;
        let tenant = claim_at(claims, &self.tenant_claim)
            .and_then(Value::as_str)
            .ok_or(TokenError::Tenant)?;
        let tenant_id = TenantId::parse(tenant).map_err(|_| TokenError::Tenant)?;
        let values: Vec<&str> = match claim_at(claims, &self.role_claim) {
            Some(Value::Array(roles)) => roles.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(role)) => vec![role.as_str()],
            _ => Vec::new(),
        };
        let any_of = |listed: &[String]| values.iter().any(|v| listed.iter().any(|l| l == v));
        let may_record_usage = any_of(&self.usage_roles);
        let role = if any_of(&self.admin_roles) {
            Role::Admin
        } else if may_record_usage {
            Role::Service
        } else {
            Role::Member
        };
        Ok(Identity {
            tenant_id,
            user_id: user_id.to_owned(),
            role,
            may_record_usage,
            email: claims
                .get("email")
                .and_then(Value::as_str)
                .and_then(|e| Email::parse(e).ok()),
            email_verified: claims
                .get("email_verified")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

fn trimmed(roles: &[String]) -> Vec<String> {
    roles
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

/// A claim by its full name first (URL-named claims contain dots), else by
/// a dotted path through nested objects.
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(tenant: &str, role: &str, admins: &[&str]) -> ClaimRules {
        ClaimRules {
            tenant_claim: tenant.into(),
            role_claim: role.into(),
            admin_roles: admins.iter().map(|s| s.to_string()).collect(),
            usage_roles: vec!["service".into(), "admin".into()],
        }
    }

    fn identity(rules: &ClaimRules, claims: Value) -> Result<Identity, TokenError> {
        rules.identity(claims.as_object().unwrap())
    }

    #[test]
    fn dotted_paths_and_url_named_claims() {
        let clerk = rules("o.id", "o.rol", &["admin"]);
        let who = identity(
            &clerk,
            json!({"sub": "u", "o": {"id": "org_1", "rol": "admin"}}),
        )
        .unwrap();
        assert_eq!((who.tenant_id.as_str(), who.role), ("org_1", Role::Admin));

        let auth0 = rules(
            "https://app.example/tenant",
            "https://app.example/roles",
            &["admin"],
        );
        let who = identity(
            &auth0,
            json!({"sub": "u", "https://app.example/tenant": "acme", "https://app.example/roles": ["viewer", "admin"]}),
        )
        .unwrap();
        assert_eq!((who.tenant_id.as_str(), who.role), ("acme", Role::Admin));
    }

    #[test]
    fn only_listed_roles_are_admin() {
        let clerk_v1 = rules("org_id", "org_role", &["org:admin"]);
        let member = identity(
            &clerk_v1,
            json!({"sub": "u", "org_id": "acme", "org_role": "org:member"}),
        )
        .unwrap();
        assert_eq!(member.role, Role::Member);
        let admin_word = identity(
            &clerk_v1,
            json!({"sub": "u", "org_id": "acme", "org_role": "admin"}),
        )
        .unwrap();
        assert_eq!(admin_word.role, Role::Member);
        let no_role = identity(&clerk_v1, json!({"sub": "u", "org_id": "acme"})).unwrap();
        assert_eq!(no_role.role, Role::Member);
    }

    #[test]
    fn usage_roles_record_usage_and_a_service_is_no_admin() {
        let rules = rules("tenant_id", "role", &["admin"]);
        let who = |claims| identity(&rules, claims).unwrap();
        let service = who(json!({"sub": "app", "tenant_id": "acme", "role": "service"}));
        assert_eq!(
            (service.role, service.may_record_usage),
            (Role::Service, true)
        );
        let admin = who(json!({"sub": "u", "tenant_id": "acme", "role": ["admin"]}));
        assert_eq!((admin.role, admin.may_record_usage), (Role::Admin, true));
        let member = who(json!({"sub": "u", "tenant_id": "acme", "role": "member"}));
        assert_eq!(
            (member.role, member.may_record_usage),
            (Role::Member, false)
        );
    }

    #[test]
    fn a_missing_or_malformed_tenant_is_refused() {
        let rules = rules("o.id", "role", &["admin"]);
        for claims in [
            json!({"sub": "u"}),
            json!({"sub": "u", "o": "acme"}),
            json!({"sub": "u", "o": {"id": 7}}),
            json!({"sub": "u", "o": {"id": "a b"}}),
        ] {
            assert_eq!(identity(&rules, claims).unwrap_err(), TokenError::Tenant);
        }
    }
}
