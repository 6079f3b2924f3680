use serde::{Deserialize, Serialize};

/// What a caller may do within its tenant. Absent in a token means `Member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(clap::ValueEnum)]
pub enum Role {
    Admin,
    #[default]
    Member,
    /// The host application's backend (a role in `auth.usage_roles` that is
    /// not an admin role): records its tenant's usage, reads like a member.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Service => "service",
        }
    }
}
