//! The tenant's callback keys and the inbox of received notices (`wecom_callback_config`,
//! `wecom_inbox`). Every statement names the tenant; the endpoint and the processor run
//! as the owner, like the job runner.

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::on_pool;

use crate::db::Database;

use super::crypto::{CallbackKeys, CryptoError};

/// Why the inbox or the keys could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the stored callback keys are unusable: {0}")]
    BadKeys(#[from] CryptoError),
    /// A command failed for a reason other than a business rule (store, conflicts).
    #[error("command failed: {0}")]
    Commands(String),
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Processed,
    /// Stored and acknowledged, but the engine has no command for it.
    Unhandled,
    /// The domain rejected the command it maps to (the row keeps the code).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Unhandled => "unhandled",
            Self::Failed => "failed",
        }
    }
}

/// A stored notice waiting to be turned into commands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingNotice {
    pub tenant_id: String,
    pub dedup_key: String,
    pub kind: String,
    pub payload: String,
}

/// Saves (or replaces) a tenant's callback keys, checking that they are usable first.
pub async fn configure(
    db: &Database,
    tenant: &TenantId,
    token: &str,
    encoding_aes_key: &str,
    receive_id: &str,
) -> Result<(), InboxError> {
    CallbackKeys::new(token, encoding_aes_key, receive_id)?;
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_callback_config (tenant_id, token, encoding_aes_key, receive_id) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token, \
             encoding_aes_key = excluded.encoding_aes_key, receive_id = excluded.receive_id",
        )
        .bind(tenant.as_str())
        .bind(token)
        .bind(encoding_aes_key)
        .bind(receive_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The tenant's keys, `None` when the tenant has configured no callback.
pub async fn keys(db: &Database, tenant: &TenantId) -> Result<Option<CallbackKeys>, InboxError> {
    let row: Option<(String, String, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT token, encoding_aes_key, receive_id FROM wecom_callback_config \
             WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
    })?;
    match row {
        None => Ok(None),
        Some((token, key, receive_id)) => Ok(Some(CallbackKeys::new(&token, &key, &receive_id)?)),
    }
}

/// Stores a notice; a redelivery (same dedup key) stores nothing. True when this call
/// stored it. `status` is `Pending`, or `Unhandled` with its reason for a notice the
/// endpoint already knows no command exists for.
#[allow(clippy::too_many_arguments)]
pub async fn store(
    db: &Database,
    tenant: &TenantId,
    dedup_key: &str,
    kind: &str,
    payload: &str,
    status: Status,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, InboxError> {
    let processed_at = (status != Status::Pending).then_some(now);
    let inserted = on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_inbox \
             (tenant_id, dedup_key, received_at, kind, payload, status, processed_at, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(dedup_key)
        .bind(now)
        .bind(kind)
        .bind(payload)
        .bind(status.as_str())
        .bind(processed_at)
        .bind(error)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// Pending notices of every tenant, in the order they arrived.
pub async fn pending(db: &Database, limit: i64) -> Result<Vec<PendingNotice>, InboxError> {
    Ok(on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, dedup_key, kind, payload FROM wecom_inbox \
             WHERE status = 'pending' ORDER BY received_at, dedup_key LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await
    })?)
}

/// Concludes a pending notice. A row another processor already concluded is left alone.
pub async fn mark(
    db: &Database,
    tenant: &str,
    dedup_key: &str,
    status: Status,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), InboxError> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE wecom_inbox SET status = $3, error = $4, processed_at = $5 \
             WHERE tenant_id = $1 AND dedup_key = $2 AND status = 'pending'",
        )
        .bind(tenant)
        .bind(dedup_key)
        .bind(status.as_str())
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Whether `stream` already holds an event appended under idempotency key `key`: how a
/// command whose shape depends on the stream's state (which handover to accept or
/// refuse) learns that an earlier run already applied the notice.
///
/// `aggregate_type` leads the events' primary key, so the lookup reads one stream.
pub async fn key_used(
    db: &Database,
    aggregate_type: &str,
    stream: &str,
    key: &str,
) -> Result<bool, InboxError> {
    let found: Option<(i64,)> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT 1::bigint FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
                 AND metadata->>'idempotency_key' = $3 LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(stream)
            .bind(key)
            .fetch_optional(pool)
            .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
                 AND json_extract(metadata, '$.idempotency_key') = $3 LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(stream)
            .bind(key)
            .fetch_optional(pool)
            .await?
        }
    };
    Ok(found.is_some())
}
