//! Jobs as the API reads them. The runner writes them with the owner's connection; the
//! API reads them under the caller's tenant like everything else.

use chrono::{DateTime, Utc};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRecord {
    pub job_id: String,
    pub kind: String,
    pub status: String,
    pub input: String,
    pub created_by: String,
    pub progress_done: i64,
    pub progress_total: i64,
    pub error_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Counts by outcome, as JSON (`[{"kind","status","code","count"}]`).
    pub outcomes: String,
    /// When a running job with nothing to do now continues.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// The columns of [`JobRecord`], in order.
pub const JOB_COLUMNS: &str = "job_id, kind, status, input, created_by, progress_done, \
    progress_total, error_code, created_at, started_at, finished_at, outcomes, next_run_at";

/// One customer or group of a handover job and where it stands.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HandoverItemRecord {
    pub kind: String,
    pub item_id: String,
    pub to_staff_id: Option<String>,
    pub due_day: Option<String>,
    pub code: String,
    pub status: i64,
}

impl Reads {
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, ReadError> {
        let mut sql = Sql::new(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = "
        ));
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND job_id = ")
            .bind(Arg::Text(job_id.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, JobRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }

    /// The tenant's jobs of `kind`, newest first, after `after` (created at, job id).
    pub async fn jobs_of_kind(
        &self,
        kind: &str,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, ReadError> {
        let mut sql = Sql::new(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = "
        ));
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND kind = ")
            .bind(Arg::Text(kind.to_string()));
        if let Some((at, id)) = after {
            sql.push(" AND (created_at < ")
                .bind(Arg::Time(at))
                .push(" OR (created_at = ")
                .bind(Arg::Time(at))
                .push(" AND job_id < ")
                .bind(Arg::Text(id))
                .push("))");
        }
        sql.push(" ORDER BY created_at DESC, job_id DESC LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(sql, JobRecord, &mut *conn)))
    }

    /// A handover job's customers and groups, customers first, by id after `after`
    /// (`kind/item_id`), optionally only those with outcome `code`.
    pub async fn handover_items(
        &self,
        job_id: &str,
        code: Option<&str>,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<HandoverItemRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT kind, item_id, to_staff_id, due_day, code, CAST(status AS bigint) AS status \
             FROM handover_items WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND job_id = ")
            .bind(Arg::Text(job_id.to_string()));
        if let Some(code) = code {
            sql.push(" AND code = ").bind(Arg::Text(code.to_string()));
        }
        if let Some((kind, item)) = after.as_deref().and_then(|a| a.split_once('/')) {
            sql.push(" AND (kind, item_id) > (")
                .bind(Arg::Text(kind.to_string()))
                .push(", ")
                .bind(Arg::Text(item.to_string()))
                .push(")");
        }
        sql.push(" ORDER BY kind, item_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            HandoverItemRecord,
            &mut *conn
        )))
    }
}
