//! Per-tenant settings the domain's rules read through their callers.

use domain::values::TenantId;
use projections::on_pool;

use crate::db::Database;

/// WeCom's default customer-group capacity, for tenants without a settings row.
pub const DEFAULT_GROUP_CAPACITY: u32 = 500;

pub async fn group_capacity(db: &Database, tenant: &TenantId) -> Result<u32, sqlx::Error> {
    // Cast: the PostgreSQL column is an `integer`, which sqlx will not decode as i64
    // (this failed for every registered tenant on PostgreSQL, unseen while tests ran
    // with unregistered ones).
    let row: Option<(i64,)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT CAST(group_capacity AS bigint) FROM tenants WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row
        .and_then(|(c,)| u32::try_from(c).ok())
        .unwrap_or(DEFAULT_GROUP_CAPACITY))
}

/// Sets the capacity of the tenant's new customer groups (checked by the caller against
/// the domain's rule).
pub async fn set_group_capacity(
    db: &Database,
    tenant: &TenantId,
    capacity: u32,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query("UPDATE tenants SET group_capacity = $1 WHERE tenant_id = $2")
            .bind(i32::try_from(capacity).unwrap_or(i32::MAX))
            .bind(tenant.as_str())
            .execute(pool)
            .await
            .map(|_| ())
    })
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

/// The languages a tenant may read descriptions in, as the `locale` column holds them.
pub const LOCALES: &[&str] = &[ZH_CN, EN];
pub const ZH_CN: &str = "zh-CN";
pub const EN: &str = "en";

/// The language the tenant's people read descriptions in when a request names none:
/// Chinese (the column's default) for tenants without a settings row.
pub async fn locale(db: &Database, tenant: &TenantId) -> Result<String, sqlx::Error> {
    let row: Option<(String,)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT locale FROM tenants WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map_or_else(|| ZH_CN.to_string(), |(locale,)| locale))
}

/// Sets the tenant's language (one of [`LOCALES`], checked by the caller).
pub async fn set_locale(db: &Database, tenant: &TenantId, locale: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query("UPDATE tenants SET locale = $1 WHERE tenant_id = $2")
            .bind(locale)
            .bind(tenant.as_str())
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Tenants' languages as read a moment ago: every portrait with a timeline asks, and
/// a tenant's language changes once in a while. Read again after [`Locales::TTL`] (a
/// change made by another process), at once after one made through this process.
#[derive(Debug, Default)]
pub struct Locales {
    seen: std::sync::Mutex<std::collections::HashMap<TenantId, (String, std::time::Instant)>>,
}

impl Locales {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(2);

    pub async fn get(&self, db: &Database, tenant: &TenantId) -> Result<String, sqlx::Error> {
        let now = std::time::Instant::now();
        if let Some((locale, at)) = self.lock().get(tenant) {
            if now.saturating_duration_since(*at) < Self::TTL {
                return Ok(locale.clone());
            }
        }
        let locale = locale(db, tenant).await?;
        let mut seen = self.lock();
        if seen.len() >= CACHED_TENANTS {
            seen.clear();
        }
        seen.insert(tenant.clone(), (locale.clone(), now));
        Ok(locale)
    }

    /// Sets the tenant's language and forgets the one read before.
    pub async fn set(
        &self,
        db: &Database,
        tenant: &TenantId,
        locale: &str,
    ) -> Result<(), sqlx::Error> {
        set_locale(db, tenant, locale).await?;
        self.lock().remove(tenant);
        Ok(())
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<TenantId, (String, std::time::Instant)>>
    {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether a tenant may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Disabled,
    Unknown,
}

pub async fn status(db: &Database, tenant: &TenantId) -> Result<TenantStatus, sqlx::Error> {
    let row: Option<(Option<chrono::DateTime<chrono::Utc>>,)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT disabled_at FROM tenants WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
    })?;
    Ok(match row {
        None => TenantStatus::Unknown,
        Some((None,)) => TenantStatus::Active,
        Some((Some(_),)) => TenantStatus::Disabled,
    })
}

/// A tenant to register.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant: TenantId,
    pub name: String,
    pub time_zone: chrono_tz::Tz,
    pub group_capacity: u32,
    /// The language its people read descriptions in: one of [`LOCALES`].
    pub locale: &'static str,
}

/// Registers a tenant; `false` when it already existed (it is left as it was).
pub async fn create(db: &Database, new: &NewTenant) -> Result<bool, sqlx::Error> {
    let done = on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO tenants (tenant_id, name, time_zone, group_capacity, locale) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(new.tenant.as_str())
        .bind(&new.name)
        .bind(new.time_zone.name())
        .bind(i32::try_from(new.group_capacity).unwrap_or(i32::MAX))
        .bind(new.locale)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Disables (`Some(when)`) or enables (`None`) a tenant; `false` when there is none.
/// Its data stays; its callers are refused from the next request (and its sockets
/// within the WebSocket's recheck interval plus the status cache's age).
pub async fn set_disabled(
    db: &Database,
    tenant: &TenantId,
    disabled_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, sqlx::Error> {
    let done = on_pool!(db, |pool| {
        sqlx::query("UPDATE tenants SET disabled_at = $2 WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .bind(disabled_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Tenant statuses as read a moment ago: every authenticated request asks, and a
/// status changes once in a tenant's life. Bounded: past [`CACHED_TENANTS`] it starts
/// over.
#[derive(Debug, Clone)]
pub struct TenantDirectory {
    db: Database,
    ttl: std::time::Duration,
    seen: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<TenantId, (TenantStatus, std::time::Instant)>>,
    >,
}

const CACHED_TENANTS: usize = 10_000;

impl TenantDirectory {
    /// How long a status read is trusted.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(2);

    pub fn new(db: &Database) -> Self {
        Self {
            db: db.clone(),
            ttl: Self::TTL,
            seen: Default::default(),
        }
    }

    pub async fn status(&self, tenant: &TenantId) -> Result<TenantStatus, sqlx::Error> {
        let now = std::time::Instant::now();
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((status, at)) = seen.get(tenant) {
                if now.saturating_duration_since(*at) < self.ttl {
                    return Ok(*status);
                }
            }
        }
        let status = status(&self.db, tenant).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= CACHED_TENANTS {
            seen.clear();
        }
        seen.insert(tenant.clone(), (status, now));
        Ok(status)
    }
}
