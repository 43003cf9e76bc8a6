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
}

impl Reads {
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT job_id, kind, status, input, created_by, progress_done, progress_total, \
             error_code, created_at, started_at, finished_at FROM jobs WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND job_id = ")
            .bind(Arg::Text(job_id.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, JobRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }
}
