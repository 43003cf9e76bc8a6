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

impl Reads {
    /// The calls to WeCom made for `subject` (a handover job), by call id after `after`.
    pub async fn wecom_calls(
        &self,
        subject: &str,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<crate::outbox::CallRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT call_id, api, subject, request, status, CAST(attempts AS BIGINT) AS attempts, \
             answer, error, created_at, updated_at FROM wecom_outbox WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND subject = ")
            .bind(Arg::Text(subject.to_string()));
        if let Some(after) = after {
            sql.push(" AND call_id > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY call_id LIMIT ").bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            crate::outbox::CallRecord,
            &mut *conn
        )))
    }

    /// Whether the tenant acts in WeCom (its API credentials are configured).
    pub async fn acts_in_wecom(&self) -> Result<bool, ReadError> {
        Ok(crate::outbox::enabled(&self.db, &self.tenant).await?)
    }
}

/// A department of the tenant's WeCom directory and the store operations mapped it to.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DepartmentRecord {
    pub department_id: i64,
    pub name: String,
    pub parent_id: i64,
    pub sort_order: i64,
    /// `None`: unmapped, its staff are in the store `dept-<id>`.
    pub store_id: Option<String>,
}

impl Reads {
    /// The tenant's WeCom departments by id after `after`, each with its mapped store.
    pub async fn wecom_departments(
        &self,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DepartmentRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT d.department_id, d.name, d.parent_id, d.sort_order, m.store_id \
             FROM wecom_departments d LEFT JOIN wecom_department_stores m \
             ON m.tenant_id = d.tenant_id AND m.department_id = d.department_id \
             WHERE d.tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()));
        if let Some(after) = after {
            sql.push(" AND d.department_id > ").bind(Arg::Int(after));
        }
        sql.push(" ORDER BY d.department_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            DepartmentRecord,
            &mut *conn
        )))
    }
}

#[derive(sqlx::FromRow)]
struct StoreName {
    name: String,
}

impl Reads {
    /// A store's name as the WeCom directory gives it: the department a `dept-<id>`
    /// store stands for, else the first department (by id) operations mapped to it.
    /// `None` when no synced department names it: stores exist only as ids otherwise.
    pub async fn store_name(&self, store_id: &str) -> Result<Option<String>, ReadError> {
        let department = store_id
            .strip_prefix("dept-")
            .and_then(|d| d.parse::<i64>().ok());
        let mut sql = match department {
            Some(id) => {
                let mut sql = Sql::new("SELECT name FROM wecom_departments WHERE tenant_id = ");
                sql.bind(Arg::Text(self.tenant.to_string()))
                    .push(" AND department_id = ")
                    .bind(Arg::Int(id));
                sql
            }
            None => {
                let mut sql = Sql::new(
                    "SELECT d.name FROM wecom_department_stores m JOIN wecom_departments d \
                     ON d.tenant_id = m.tenant_id AND d.department_id = m.department_id \
                     WHERE m.tenant_id = ",
                );
                sql.bind(Arg::Text(self.tenant.to_string()))
                    .push(" AND m.store_id = ")
                    .bind(Arg::Text(store_id.to_string()))
                    .push(" ORDER BY d.department_id");
                sql
            }
        };
        sql.push(" LIMIT 1");
        let rows = scoped!(self, |conn| fetch_all!(sql, StoreName, &mut *conn));
        Ok(rows
            .into_iter()
            .next()
            .map(|r| r.name)
            .filter(|n| !n.is_empty()))
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
