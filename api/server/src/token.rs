//! Development tokens: `scrm token` and the demo's printed tokens mint them the same way.

use clap::Args;
use domain::values::TenantId;
use engine::auth::Role;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long, value_enum)]
    pub role: Role,
    /// The staff member's WeCom userid (required for guides and store managers).
    #[arg(long)]
    pub staff: Option<String>,
    /// Store ids the caller works for (guides' store scope, store managers).
    #[arg(long, value_delimiter = ',')]
    pub stores: Vec<String>,
    /// Extra scopes, e.g. `pii`.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Hours until the token expires.
    #[arg(long, default_value_t = 12)]
    pub hours: i64,
}

impl TokenArgs {
    pub fn mint(&self, jwt: &engine::auth::JwtSettings) -> anyhow::Result<String> {
        let tenant = TenantId::parse_slug(&self.tenant)?;
        let subject = match (&self.staff, self.role) {
            (Some(staff), _) => domain::values::StaffId::parse(staff.as_str())?.to_string(),
            (None, Role::Guide | Role::StoreManager) => {
                anyhow::bail!("--staff is required for a {} token", self.role.as_str())
            }
            (None, role) => format!("{}-dev", role.as_str()),
        };
        let stores = self
            .stores
            .iter()
            .map(|s| domain::values::StoreId::parse(s.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let claims = jwt.claims(
            &tenant,
            &subject,
            self.role,
            &stores,
            &self.scopes,
            chrono::Utc::now(),
            chrono::Duration::hours(self.hours.clamp(1, 24 * 30)),
        );
        Ok(jwt.mint(&claims))
    }
}
