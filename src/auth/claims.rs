use crate::domain::{Email, Role, TenantId};

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub tenant_id: TenantId,
    /// The token's `sub`: the acting user, recorded in the audit log.
    pub user_id: String,
    pub role: Role,
    /// A claimed email; used only as the last fallback for a customer's email.
    pub email: Option<Email>,
    pub email_verified: bool,
}
