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

/// The tenant's time zone: daily limits count its calendar days. Shanghai (the
/// column's default) for tenants without a settings row or with a name chrono-tz does
/// not know.
pub async fn time_zone(db: &Database, tenant: &TenantId) -> Result<chrono_tz::Tz, sqlx::Error> {
    let row: Option<(String,)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT time_zone FROM tenants WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row
        .and_then(|(name,)| name.parse().ok())
        .unwrap_or(chrono_tz::Asia::Shanghai))
}
