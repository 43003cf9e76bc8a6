//! The tenant's departments (`wecom_departments`) and which store each one is
//! (`wecom_department_stores`). Every statement names the tenant; the job runner, the
//! inbox processor and the mapping mutation write as the owner.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::values::{StoreId, TenantId};
use projections::on_pool;

use engine::db::Database;

use crate::client::{ClientError, Department};
use crate::inbox::InboxError;

/// Why the directory could not be read, stored or applied.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("{0}")]
    Inbox(#[from] InboxError),
    #[error("{0}")]
    Api(#[from] ClientError),
    /// A command failed for a reason other than a business rule (store, conflicts).
    #[error("command failed: {0}")]
    Commands(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the tenant has no WeCom API credentials (scrm wecom configure --corp-id, with the \
         corp secret)"
    )]
    NoCredentials,
    /// A listing without a root department would depart everyone.
    #[error("WeCom listed no departments")]
    NoDepartments,
}

impl DirectoryError {
    /// The stable code a failed job records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(_) | Self::Commands(_) | Self::Inbox(_) => "STORE",
            Self::Api(_) => "WECOM_API",
            Self::NoCredentials => "NO_CREDENTIALS",
            Self::NoDepartments => "NO_DEPARTMENTS",
        }
    }
}

/// Replaces the tenant's departments with a full listing, in one transaction.
pub async fn replace_departments(
    db: &Database,
    tenant: &TenantId,
    departments: &[Department],
    at: DateTime<Utc>,
) -> Result<(), DirectoryError> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM wecom_departments WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        for d in departments {
            sqlx::query(
                "INSERT INTO wecom_departments \
                 (tenant_id, department_id, name, parent_id, sort_order, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant.as_str())
            .bind(d.id)
            .bind(&d.name)
            .bind(d.parentid)
            .bind(d.order)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })?;
    Ok(())
}

/// Creates a department or changes the fields a `create_party`/`update_party` notice
/// carries; the others keep their values.
pub async fn upsert_department(
    db: &Database,
    tenant: &TenantId,
    id: i64,
    name: Option<&str>,
    parent: Option<i64>,
    order: Option<i64>,
    at: DateTime<Utc>,
) -> Result<(), DirectoryError> {
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_departments \
             (tenant_id, department_id, name, parent_id, sort_order, updated_at) \
             VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, 0), COALESCE($5, 0), $6) \
             ON CONFLICT (tenant_id, department_id) DO UPDATE SET \
             name = COALESCE($3, wecom_departments.name), \
             parent_id = COALESCE($4, wecom_departments.parent_id), \
             sort_order = COALESCE($5, wecom_departments.sort_order), updated_at = $6",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(name)
        .bind(parent)
        .bind(order)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// A department WeCom deleted. Its store mapping stays: WeCom only deletes a department
/// without staff, and a department created again under the same id is the same store.
pub async fn delete_department(
    db: &Database,
    tenant: &TenantId,
    id: i64,
) -> Result<(), DirectoryError> {
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM wecom_departments WHERE tenant_id = $1 AND department_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Operations say department `id` is `store`.
pub async fn map_department(
    db: &Database,
    tenant: &TenantId,
    id: i64,
    store: &StoreId,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), DirectoryError> {
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_department_stores \
             (tenant_id, department_id, store_id, mapped_by, mapped_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, department_id) DO UPDATE SET \
             store_id = $3, mapped_by = $4, mapped_at = $5",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(store.as_str())
        .bind(by)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// Every mapped department's store.
pub async fn mapping(
    db: &Database,
    tenant: &TenantId,
) -> Result<BTreeMap<i64, StoreId>, DirectoryError> {
    let rows: Vec<(i64, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT department_id, store_id FROM wecom_department_stores WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, store)| StoreId::parse(store).ok().map(|s| (id, s)))
        .collect())
}
