//! Calls the log asks WeCom to make (docs/adr/0013-wecom-outbox.md).
//!
//! A command whose events ask WeCom to act (a handover's customers, a group's new owner)
//! writes the call here in the transaction that appends those events
//! ([`crate::commands::CommandService::execute_many_calling`]): a call exists exactly
//! when its event does. The WeCom crate's outbound runner sends due calls and keeps
//! WeCom's answer on the row; the engine only stores and hands them out, it knows no
//! transport.

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::on_pool;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::db::Database;

/// One call to WeCom's server API, as a command asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub tenant: TenantId,
    /// Derived from what is asked, so a replayed command asks for the same call.
    pub call_id: String,
    /// The API's path after `/cgi-bin/`, e.g. `externalcontact/resigned/transfer_customer`.
    pub api: String,
    /// What the call belongs to (a handover job's id), for operations to find it.
    pub subject: Option<String>,
    /// The JSON body WeCom receives.
    pub request: Value,
}

/// A stable call id from the parts that name what is asked.
pub fn call_id(parts: &[&str]) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, parts.join("\u{1f}").as_bytes()).to_string()
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// To send from `next_attempt_at`.
    Pending,
    /// Sent and not answered on record: a crash or a lost answer. WeCom may have acted.
    Sending,
    Done,
    Failed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sending" => Self::Sending,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A call due to be sent, as the runner reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueCall {
    pub tenant: String,
    pub call_id: String,
    pub api: String,
    pub subject: Option<String>,
    pub request: Value,
    pub status: CallStatus,
    pub attempts: i64,
}

type DueRow = (String, String, String, Option<String>, String, String, i64);

/// One `INSERT` of `calls` on `$tx`, a connection of backend `$db` (the two differ only
/// in the builder's type). A call already written (same id) is left as it is.
macro_rules! insert_calls {
    ($db:ty, $tx:expr, $calls:expr, $now:expr) => {{
        if $calls.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO wecom_outbox (tenant_id, call_id, api, subject, request, \
             next_attempt_at, created_at, updated_at) ",
        );
        q.push_values($calls, |mut row, c| {
            row.push_bind(c.tenant.as_str())
                .push_bind(&c.call_id)
                .push_bind(&c.api)
                .push_bind(c.subject.as_deref())
                .push_bind(c.request.to_string())
                .push_bind($now)
                .push_bind($now)
                .push_bind($now);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute($tx).await?;
        Ok(())
    }};
}

/// Writes `calls` on the transaction that appends the events asking for them.
pub(crate) async fn insert_pg(
    tx: &mut sqlx::PgConnection,
    calls: &[Call],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    insert_calls!(Postgres, tx, calls, now)
}

/// [`insert_pg`] on SQLite.
pub(crate) async fn insert_sqlite(
    tx: &mut sqlx::SqliteConnection,
    calls: &[Call],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    insert_calls!(Sqlite, tx, calls, now)
}

/// One `INSERT` of `call` as `sending` on `$tx`, due again only at `$until`: the writer
/// sends it at once and the tick leaves it alone meanwhile. `true` when this wrote it.
macro_rules! claim_call {
    ($tx:expr, $call:expr, $now:expr, $until:expr) => {{
        let c = $call;
        let written = sqlx::query(
            "INSERT INTO wecom_outbox (tenant_id, call_id, api, subject, request, status, \
             next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'sending', $6, $7, $7) ON CONFLICT DO NOTHING",
        )
        .bind(c.tenant.as_str())
        .bind(&c.call_id)
        .bind(&c.api)
        .bind(c.subject.as_deref())
        .bind(c.request.to_string())
        .bind($until)
        .bind($now)
        .execute($tx)
        .await?;
        Ok(written.rows_affected() == 1)
    }};
}

/// Writes `call` for the caller to send now rather than on the tick (a welcome code
/// lives 20 seconds; an operator waits for a channel code's QR code). `false` when the
/// call was written before: its writer sends it.
pub async fn claim_pg(
    tx: &mut sqlx::PgConnection,
    call: &Call,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    claim_call!(tx, call, now, until)
}

/// [`claim_pg`] on SQLite.
pub async fn claim_sqlite(
    tx: &mut sqlx::SqliteConnection,
    call: &Call,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    claim_call!(tx, call, now, until)
}

/// The call `call_id` as the runner reads it, whatever its status.
pub async fn get(
    db: &Database,
    tenant: &str,
    call_id: &str,
) -> Result<Option<DueCall>, sqlx::Error> {
    let row: Option<DueRow> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, call_id, api, subject, request, status, \
             CAST(attempts AS BIGINT) FROM wecom_outbox WHERE tenant_id = $1 AND call_id = $2",
        )
        .bind(tenant)
        .bind(call_id)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.map(due_call))
}

fn due_call((tenant, call_id, api, subject, request, status, attempts): DueRow) -> DueCall {
    DueCall {
        tenant,
        call_id,
        api,
        subject,
        request: serde_json::from_str(&request).unwrap_or(Value::Null),
        status: CallStatus::parse(&status),
        attempts,
    }
}

/// Calls of every tenant due at `now`, oldest first. A customer's edits (tags, remark)
/// wait for that customer's older edits: WeCom must see them in the order made.
pub async fn due(
    db: &Database,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueCall>, sqlx::Error> {
    let rows: Vec<DueRow> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, call_id, api, subject, request, status, \
             CAST(attempts AS BIGINT) FROM wecom_outbox w \
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 \
             AND (api NOT IN ($3, $4) OR NOT EXISTS (SELECT 1 FROM wecom_outbox e \
               WHERE e.tenant_id = w.tenant_id AND e.subject = w.subject \
               AND e.status IN ('pending', 'sending') AND e.api IN ($3, $4) \
               AND (e.created_at < w.created_at \
                 OR (e.created_at = w.created_at AND e.call_id < w.call_id)))) \
             ORDER BY next_attempt_at, created_at, call_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .bind(crate::wecom_writes::MARK_TAG)
        .bind(crate::wecom_writes::REMARK)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(due_call).collect())
}

/// Records that an attempt is about to be sent, before it is: a crash after WeCom acted
/// leaves the call `sending`, and the next attempt asks WeCom before sending again. It
/// stays due: the runner holds its lease for as long as a call is in flight, so a
/// `sending` call a runner finds is one nobody is waiting on any more.
pub async fn sending(db: &Database, call: &DueCall, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    update(
        db,
        call,
        "status = 'sending', attempts = attempts + 1, error = COALESCE($5, error), \
         next_attempt_at = $3, updated_at = $4",
        (now, now),
        None,
    )
    .await
}

/// WeCom answered: the call is done and its answer kept.
pub async fn answered(
    db: &Database,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    update(
        db,
        call,
        "status = 'done', answer = $5, error = NULL, next_attempt_at = $3, updated_at = $4",
        (now, now),
        Some(answer.to_string()),
    )
    .await
}

/// No usable answer yet: try again from `next_attempt_at`. `status` is
/// [`CallStatus::Pending`] when WeCom said it did nothing (busy, over its frequency
/// limit) and [`CallStatus::Sending`] when nobody knows (no answer arrived).
pub async fn retry_later(
    db: &Database,
    call: &DueCall,
    status: CallStatus,
    next_attempt_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let set = format!(
        "status = '{}', error = $5, next_attempt_at = $3, updated_at = $4",
        status.as_str()
    );
    update(
        db,
        call,
        &set,
        (next_attempt_at, now),
        Some(error.to_string()),
    )
    .await
}

/// Given up: the error is kept for operations.
pub async fn fail(
    db: &Database,
    call: &DueCall,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    update(
        db,
        call,
        "status = 'failed', error = $5, next_attempt_at = $3, updated_at = $4",
        (now, now),
        Some(error.to_string()),
    )
    .await
}

async fn update(
    db: &Database,
    call: &DueCall,
    set: &str,
    (at, now): (DateTime<Utc>, DateTime<Utc>),
    text: Option<String>,
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE wecom_outbox SET {set} WHERE tenant_id = $1 AND call_id = $2");
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(&call.tenant)
            .bind(&call.call_id)
            .bind(at)
            .bind(now)
            .bind(text.as_deref())
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The calls about `subject` (a customer) not yet answered: `(api, request)`.
pub async fn pending_for(
    db: &Database,
    tenant: &TenantId,
    subject: &str,
) -> Result<Vec<(String, Value)>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT api, request FROM wecom_outbox WHERE tenant_id = $1 AND subject = $2 \
             AND status IN ('pending', 'sending') ORDER BY created_at, call_id",
        )
        .bind(tenant.as_str())
        .bind(subject)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(api, request)| Some((api, serde_json::from_str(&request).ok()?)))
        .collect())
}

/// Whether the tenant acts in WeCom: its API credentials are configured. Without them
/// the engine runs alone and says so (a handover then completes on WeCom's 24-hour rule
/// as the engine models it, not on WeCom's answer).
pub async fn enabled(db: &Database, tenant: &TenantId) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT CAST(1 AS BIGINT) FROM wecom_callback_config WHERE tenant_id = $1 \
             AND corp_id IS NOT NULL AND corp_secret IS NOT NULL",
        )
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
    })?;
    Ok(found.is_some())
}

/// A call as operations see it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CallRecord {
    pub call_id: String,
    pub api: String,
    pub subject: Option<String>,
    pub request: String,
    pub status: String,
    pub attempts: i64,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_names_its_parts_and_nothing_else() {
        assert_eq!(call_id(&["j", "1"]), call_id(&["j", "1"]));
        assert_ne!(call_id(&["j", "1"]), call_id(&["j", "2"]));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(call_id(&["ab", "c"]), call_id(&["a", "bc"]));
    }
}
