//! Per-tenant settings the domain's rules read through their callers.

use domain::values::TenantId;
use projections::on_pool;

use crate::db::Database;

/// WeCom's default customer-group capacity, for tenants without a settings row.
pub const DEFAULT_GROUP_CAPACITY: u32 = 500;

pub async fn group_capacity(db: &Database, tenant: &TenantId) -> Result<u32, sqlx::Error> {
    let row: Option<(i64,)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT group_capacity FROM tenants WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row
        .and_then(|(c,)| u32::try_from(c).ok())
        .unwrap_or(DEFAULT_GROUP_CAPACITY))
}
