//! The tenant's callback keys and the inbox of received notices (`wecom_callback_config`,
//! `wecom_inbox`). Every statement names the tenant; the endpoint and the processor run
//! as the owner, like the job runner.

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::on_pool;

use engine::db::Database;

use super::client::{Credentials, Secret};
use super::crypto::{CallbackKeys, CryptoError};
use super::intake::Intake;

/// Why the inbox or the keys could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the stored callback keys are unusable: {0}")]
    BadKeys(#[from] CryptoError),
    /// A command failed for a reason other than a business rule (store, conflicts).
    #[error("command failed: {0}")]
    Commands(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A configuration that cannot work (a secret without a corp id, a bad URL).
    #[error("invalid callback configuration: {0}")]
    Config(&'static str),
}

impl InboxError {
    /// The stable prefix a notice's row records the error under.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(_) | Self::Commands(_) => "STORE",
            Self::BadKeys(_) | Self::Config(_) => "CONFIG",
        }
    }
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Processed,
    /// Stored and acknowledged, but the engine has no command for it.
    Unhandled,
    /// The domain rejected the command it maps to (the row keeps the code), or its
    /// tries kept failing (the row keeps the last error).
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
    /// The stream whose notices apply in arrival order ([`crate::process::subject`]).
    pub subject: Option<String>,
    pub payload: String,
    /// Tries that failed so far: an API read or the store.
    pub attempts: i64,
    /// What an earlier run read from WeCom's API for this notice (JSON), if it did.
    pub fetched: Option<String>,
}

/// Everything a tenant configured for its callback.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub keys: CallbackKeys,
    /// The corp id every notice's envelope must name, when set.
    pub corp_id: Option<String>,
    /// How to read WeCom's API; `None` when no secret is configured.
    pub api: Option<Credentials>,
}

/// What an operator configures for a tenant (`scrm wecom configure`).
#[derive(Debug, Clone)]
pub struct Setup {
    pub token: String,
    pub encoding_aes_key: String,
    /// The corp id (self-built app) or suite id (third-party app) after each message.
    pub receive_id: String,
    pub corp_id: Option<String>,
    /// The secret of an app allowed to read customer contacts; needs `corp_id`.
    pub corp_secret: Option<Secret>,
    /// Overrides [`super::client::DEFAULT_BASE_URL`].
    pub api_base_url: Option<String>,
}

/// Saves (or replaces) a tenant's whole callback configuration, checking it first.
pub async fn configure_all(
    db: &Database,
    tenant: &TenantId,
    setup: &Setup,
) -> Result<(), InboxError> {
    CallbackKeys::new(&setup.token, &setup.encoding_aes_key, &setup.receive_id)?;
    let corp_id = setup
        .corp_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if setup.corp_secret.is_some() && corp_id.is_none() {
        return Err(InboxError::Config("a corp secret needs the corp id"));
    }
    if setup
        .corp_secret
        .as_ref()
        .is_some_and(|s| s.expose().trim().is_empty())
    {
        return Err(InboxError::Config("the corp secret is empty"));
    }
    if let Some(url) = &setup.api_base_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(InboxError::Config(
                "the API base URL must start with https:// or http://",
            ));
        }
    }
    let secret = setup.corp_secret.as_ref().map(|s| s.expose().trim());
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_callback_config (tenant_id, token, encoding_aes_key, receive_id, \
             corp_id, corp_secret, api_base_url) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token, \
             encoding_aes_key = excluded.encoding_aes_key, receive_id = excluded.receive_id, \
             corp_id = excluded.corp_id, corp_secret = excluded.corp_secret, \
             api_base_url = excluded.api_base_url",
        )
        .bind(tenant.as_str())
        .bind(&setup.token)
        .bind(&setup.encoding_aes_key)
        .bind(&setup.receive_id)
        .bind(corp_id)
        .bind(secret)
        .bind(setup.api_base_url.as_deref())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The tenant's configuration, `None` when the tenant has configured no callback.
pub async fn config(
    db: &Database,
    tenant: &TenantId,
) -> Result<Option<CallbackConfig>, InboxError> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT token, encoding_aes_key, receive_id, corp_id, corp_secret, api_base_url \
             FROM wecom_callback_config WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
    })?;
    let Some((token, key, receive_id, corp_id, secret, base_url)) = row else {
        return Ok(None);
    };
    let api = match (&corp_id, secret) {
        (Some(corp_id), Some(secret)) => Some(Credentials {
            corp_id: corp_id.clone(),
            secret: Secret::new(secret),
            base_url,
        }),
        _ => None,
    };
    Ok(Some(CallbackConfig {
        keys: CallbackKeys::new(&token, &key, &receive_id)?,
        corp_id,
        api,
    }))
}

/// Saves (or replaces) a tenant's callback keys, checking that they are usable first. The
/// corp id and API credentials, if any, are kept.
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
    Ok(config(db, tenant).await?.map(|c| c.keys))
}

/// Stores a notice; a redelivery (same dedup key) stores nothing. True when this call
/// stored it.
pub async fn store(
    db: &Database,
    tenant: &TenantId,
    intake: &Intake,
    now: DateTime<Utc>,
) -> Result<bool, InboxError> {
    let processed_at = (intake.status != Status::Pending).then_some(now);
    let inserted = on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_inbox (tenant_id, dedup_key, received_at, kind, subject, \
             payload, status, processed_at, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(&intake.dedup_key)
        .bind(now)
        .bind(&intake.kind)
        .bind(intake.subject.as_deref())
        .bind(&intake.payload)
        .bind(intake.status.as_str())
        .bind(processed_at)
        .bind(intake.reason.as_deref())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// Pending notices of every tenant that are due at `now`, in the order they arrived.
/// A notice waiting for a retry holds back the later notices of its subject: they would
/// otherwise apply before it (a friend removed, then added back).
pub async fn pending(
    db: &Database,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PendingNotice>, InboxError> {
    Ok(on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, dedup_key, kind, subject, payload, \
             CAST(attempts AS BIGINT) AS attempts, fetched FROM wecom_inbox w \
             WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1) \
             AND NOT EXISTS (SELECT 1 FROM wecom_inbox e WHERE e.tenant_id = w.tenant_id \
               AND e.subject = w.subject AND e.status = 'pending' AND e.next_attempt_at > $1 \
               AND (e.received_at < w.received_at \
                 OR (e.received_at = w.received_at AND e.dedup_key < w.dedup_key))) \
             ORDER BY received_at, dedup_key LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?)
}

/// Leaves a pending notice pending after a failed try (an API read, the store): it is
/// tried again from `next_attempt_at`. `error` says why it waits.
pub async fn defer(
    db: &Database,
    tenant: &str,
    dedup_key: &str,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), InboxError> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE wecom_inbox SET attempts = $3, next_attempt_at = $4, error = $5 \
             WHERE tenant_id = $1 AND dedup_key = $2 AND status = 'pending'",
        )
        .bind(tenant)
        .bind(dedup_key)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Keeps what the API said for a notice before its commands run, so a run that stops
/// half-way is finished from the same read.
pub async fn save_fetched(
    db: &Database,
    tenant: &str,
    dedup_key: &str,
    fetched: &str,
) -> Result<(), InboxError> {
    on_pool!(db, |pool| {
        sqlx::query("UPDATE wecom_inbox SET fetched = $3 WHERE tenant_id = $1 AND dedup_key = $2")
            .bind(tenant)
            .bind(dedup_key)
            .bind(fetched)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
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

/// Puts the tenant's notices with `status` (unhandled or failed) back in the queue,
/// with their API attempts reset: after an operator configured API credentials, or
/// fixed what a domain rule refused. What an earlier run read from WeCom is kept, so
/// the steps it already applied repeat as replays. Returns how many.
pub async fn retry(db: &Database, tenant: &TenantId, status: Status) -> Result<u64, InboxError> {
    if !matches!(status, Status::Unhandled | Status::Failed) {
        return Err(InboxError::Config(
            "only unhandled or failed notices are retried",
        ));
    }
    Ok(on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE wecom_inbox SET status = 'pending', attempts = 0, next_attempt_at = NULL \
             WHERE tenant_id = $1 AND status = $2",
        )
        .bind(tenant.as_str())
        .bind(status.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?)
}

/// What [`retry_notices`] did with one dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeued {
    /// Back in the queue, due now.
    Queued,
    /// The tenant has no notice with this key (another tenant's keys look the same).
    Unknown,
    /// Already applied: running it again would apply it twice.
    Processed,
    /// Already waiting for the processor; left as it is so its backoff and its place
    /// ahead of its subject's later notices hold.
    Pending,
}

/// Puts the tenant's unhandled or failed notices named by `dedup_keys` back in the
/// queue, due at once, as [`retry`] does for a whole status: an operator's retry from the
/// console after fixing the cause. The attempts start again from zero so the processor
/// gives the notice its full round of tries instead of failing it after one; what an
/// earlier run read from WeCom is kept, so the steps it already applied repeat as
/// replays. Each key is moved by one conditional update, so a notice the processor
/// concludes meanwhile, or one already processed, is never queued twice.
pub async fn retry_notices(
    db: &Database,
    tenant: &TenantId,
    dedup_keys: &[String],
) -> Result<Vec<Requeued>, InboxError> {
    let mut outcomes = Vec::with_capacity(dedup_keys.len());
    for key in dedup_keys {
        let moved = on_pool!(db, |pool| {
            sqlx::query(
                "UPDATE wecom_inbox SET status = 'pending', attempts = 0, \
                 next_attempt_at = NULL, processed_at = NULL \
                 WHERE tenant_id = $1 AND dedup_key = $2 AND status IN ('unhandled', 'failed')",
            )
            .bind(tenant.as_str())
            .bind(key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if moved == 1 {
            outcomes.push(Requeued::Queued);
            continue;
        }
        let status: Option<(String,)> = on_pool!(db, |pool| {
            sqlx::query_as("SELECT status FROM wecom_inbox WHERE tenant_id = $1 AND dedup_key = $2")
                .bind(tenant.as_str())
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        outcomes.push(match status.as_ref().map(|(s,)| s.as_str()) {
            None => Requeued::Unknown,
            Some("processed") => Requeued::Processed,
            // Moved back to failed between the two statements is not worth a loop: the
            // operator sees it failed and retries again.
            _ => Requeued::Pending,
        });
    }
    Ok(outcomes)
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
