//! The WeCom inbox as operations read it: which notices arrived, and which the engine
//! could not apply and why. Payloads stay out: they hold customers' ids and remarks.

use chrono::{DateTime, Utc};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WecomNoticeRecord {
    pub dedup_key: String,
    pub kind: String,
    pub status: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Reads {
    /// The tenant's notices, newest first, after `after` (received at, dedup key),
    /// optionally only those with `status`.
    pub async fn wecom_notices(
        &self,
        status: Option<&str>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<WecomNoticeRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT dedup_key, kind, status, error, attempts, received_at, processed_at, \
             next_attempt_at FROM wecom_inbox WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()));
        if let Some(status) = status {
            sql.push(" AND status = ")
                .bind(Arg::Text(status.to_string()));
        }
        if let Some((at, key)) = after {
            sql.push(" AND (received_at < ")
                .bind(Arg::Time(at))
                .push(" OR (received_at = ")
                .bind(Arg::Time(at))
                .push(" AND dedup_key < ")
                .bind(Arg::Text(key))
                .push("))");
        }
        sql.push(" ORDER BY received_at DESC, dedup_key DESC LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            WecomNoticeRecord,
            &mut *conn
        )))
    }
}

/// How far a WeCom import job got, and what it brought in (`wecom_import`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WecomImportRecord {
    pub phase: String,
    pub relations_seen: i64,
    pub relations_imported: i64,
    pub events: i64,
    pub groups: i64,
    pub rejected: i64,
    pub throttled: i64,
    pub updated_at: DateTime<Utc>,
}

impl Reads {
    /// The tallies of import job `job_id`, `None` before its first run.
    pub async fn wecom_import(&self, job_id: &str) -> Result<Option<WecomImportRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT phase, relations_seen, relations_imported, events, groups, rejected, \
             throttled, updated_at FROM wecom_import WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND job_id = ")
            .bind(Arg::Text(job_id.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, WecomImportRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }
}
