//! Who is calling: signed JWTs for people, API keys for integrations, both resolved
//! once per request into a [`Caller`] that every resolver and query takes its tenant
//! and scope from. Nothing else is trusted: no cookies, no tenant arguments.

mod api_key;
mod departed;
mod jwt;
pub mod presence;
pub mod scope;
mod secret;

use domain::values::{StaffId, StoreId, TenantId};
use serde::{Deserialize, Serialize};

pub use api_key::{ApiKeys, NewApiKey};
pub use jwt::{Claims, JwtSettings};
pub use scope::{customer_scope, Reach};
pub use secret::{load_or_create_secret, SecretError};

use crate::tenants::{TenantDirectory, TenantStatus};

/// What a caller may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[clap(rename_all = "snake_case")]
pub enum Role {
    /// A store guide: their own customers (their store's on request).
    Guide,
    /// A store manager: the customers of their stores.
    StoreManager,
    /// Operations: the whole tenant's staff, tags, groups and handovers.
    Operations,
    /// Analysts: the whole tenant's funnels and the projections.
    Analyst,
    /// Everything within the tenant, including introspection.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guide => "guide",
            Self::StoreManager => "store_manager",
            Self::Operations => "operations",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Guide,
            Self::StoreManager,
            Self::Operations,
            Self::Analyst,
            Self::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

/// A scope granting personal data (full phone numbers) to roles that do not see it by
/// default.
pub const SCOPE_PII: &str = "pii";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Jwt,
    ApiKey { key_id: String },
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    /// The token's subject: a staff member's WeCom userid, or an API key's name.
    pub subject: String,
    pub role: Role,
    pub stores: Vec<StoreId>,
    pub scopes: Vec<String>,
    pub credential: Credential,
}

impl Caller {
    /// The staff member behind the call, for roles that are staff.
    pub fn staff(&self) -> Option<StaffId> {
        match self.role {
            Role::Guide | Role::StoreManager => StaffId::parse(self.subject.as_str()).ok(),
            _ => None,
        }
    }

    /// Who sent a request, as idempotency keys are scoped: a person by their token's
    /// subject, an integration by its key.
    pub fn principal(&self) -> String {
        match &self.credential {
            Credential::Jwt => format!("jwt:{}:{}", self.role.as_str(), self.subject),
            Credential::ApiKey { key_id } => format!("key:{key_id}"),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Full personal data: admins and operations always, everyone else with the scope.
    pub fn sees_pii(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Operations) || self.has_scope(SCOPE_PII)
    }

    /// The actor recorded on the events this caller causes.
    pub fn actor(&self) -> crate::commands::Actor {
        match (&self.credential, self.staff()) {
            (Credential::ApiKey { key_id }, _) => crate::commands::Actor::integration(key_id),
            (Credential::Jwt, Some(staff)) => crate::commands::Actor::staff(&staff),
            (Credential::Jwt, None) => crate::commands::Actor::operator(&self.subject),
        }
    }
}

/// Why a request is not authenticated. The client is told only that it is not; the
/// reason goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("unsupported Authorization scheme")]
    Scheme,
    #[error("invalid token: {0}")]
    Token(String),
    /// The JWT library refused the token (signature, expiry, issuer, audience, shape).
    #[error("invalid token: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("unknown, revoked or malformed API key")]
    ApiKey,
    #[error("tenant {0} is not registered")]
    UnknownTenant(TenantId),
    #[error("tenant {0} is disabled")]
    DisabledTenant(TenantId),
    #[error("staff member {0} has departed")]
    Departed(StaffId),
    #[error("auth store: {0}")]
    Store(#[from] sqlx::Error),
}

/// Resolves an `Authorization` header value into a caller of a registered, active
/// tenant. A valid signature is not enough: whoever holds the signing secret could name
/// any tenant, and a tenant that left must stop being served.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub jwt: JwtSettings,
    pub keys: ApiKeys,
    pub tenants: TenantDirectory,
    /// Staff known to be still here (shared with the server's listener).
    pub presence: std::sync::Arc<presence::Presence>,
}

impl Authenticator {
    pub fn new(
        jwt: JwtSettings,
        db: &crate::db::Database,
        presence: std::sync::Arc<presence::Presence>,
    ) -> Self {
        Self {
            jwt,
            keys: ApiKeys::new(db),
            tenants: TenantDirectory::new(db),
            presence,
        }
    }

    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?.trim();
        let (scheme, value) = header.split_once(' ').ok_or(AuthError::Scheme)?;
        let value = value.trim();
        let caller = match scheme.to_ascii_lowercase().as_str() {
            "bearer" if value.starts_with(api_key::PREFIX) => self.keys.verify(value).await,
            "apikey" => self.keys.verify(value).await,
            "bearer" => self.jwt.verify(value),
            _ => Err(AuthError::Scheme),
        }?;
        match self.tenants.status(&caller.tenant).await? {
            TenantStatus::Active => {}
            TenantStatus::Unknown => return Err(AuthError::UnknownTenant(caller.tenant)),
            TenantStatus::Disabled => return Err(AuthError::DisabledTenant(caller.tenant)),
        }
        if let Some(staff) = caller.staff() {
            if departed::has_departed(self.keys.db(), &self.presence, &caller.tenant, &staff)
                .await?
            {
                return Err(AuthError::Departed(staff));
            }
        }
        Ok(caller)
    }
}
