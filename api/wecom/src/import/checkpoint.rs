//! Where an import job stands (`wecom_import`) and its job row. Written after every
//! page, after the page's events: a crash in between reads the page again, and its
//! idempotency keys append nothing twice.

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::on_pool;

use engine::db::Database;

/// The phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Tags,
    Staff,
    Customers,
    Groups,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tags => "tags",
            Self::Staff => "staff",
            Self::Customers => "customers",
            Self::Groups => "groups",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "staff" => Self::Staff,
            "customers" => Self::Customers,
            "groups" => Self::Groups,
            "done" => Self::Done,
            _ => Self::Tags,
        }
    }
}

/// An import job's position and tallies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub phase: Phase,
    pub staff: Vec<String>,
    pub chunk: i64,
    pub cursor: String,
    pub relations_seen: i64,
    pub relations_imported: i64,
    pub events: i64,
    pub groups: i64,
    pub rejected: i64,
    pub throttled: i64,
}

type Row = (String, String, i64, String, i64, i64, i64, i64, i64, i64);

const COLUMNS: &str = "phase, staff, chunk, cursor, relations_seen, relations_imported, \
    events, groups, rejected, throttled";

impl Checkpoint {
    fn from_row(row: Row) -> Self {
        let (phase, staff, chunk, cursor, seen, imported, events, groups, rejected, throttled) =
            row;
        Self {
            phase: Phase::parse(&phase),
            staff: serde_json::from_str(&staff).unwrap_or_default(),
            chunk,
            cursor,
            relations_seen: seen,
            relations_imported: imported,
            events,
            groups,
            rejected,
            throttled,
        }
    }

    /// Staff whose customers are all in: the job's progress, of [`Self::staff`].
    pub fn staff_done(&self, chunk_size: usize) -> i64 {
        let total = self.staff.len() as i64;
        match self.phase {
            Phase::Tags | Phase::Staff => 0,
            Phase::Customers => (self.chunk * chunk_size as i64).min(total),
            Phase::Groups | Phase::Done => total,
        }
    }
}

/// The job's checkpoint, created at the start on its first run.
pub async fn load_or_start(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<Checkpoint, sqlx::Error> {
    let row: Option<Row> = on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO wecom_import (tenant_id, job_id, phase, updated_at) \
             VALUES ($1, $2, 'tags', $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM wecom_import WHERE tenant_id = $1 AND job_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(job_id)
        .fetch_optional(pool)
        .await
    })?;
    row.map(Checkpoint::from_row)
        .ok_or(sqlx::Error::RowNotFound)
}

/// Saves `cp` and the job's progress (`done` of `total`) in one transaction.
pub async fn save(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    cp: &Checkpoint,
    (done, total): (i64, i64),
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let staff = serde_json::to_string(&cp.staff).unwrap_or_else(|_| "[]".into());
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE wecom_import SET phase = $3, staff = $4, chunk = $5, cursor = $6, \
             relations_seen = $7, relations_imported = $8, events = $9, groups = $10, \
             rejected = $11, throttled = $12, updated_at = $13 \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(cp.phase.as_str())
        .bind(&staff)
        .bind(cp.chunk)
        .bind(&cp.cursor)
        .bind(cp.relations_seen)
        .bind(cp.relations_imported)
        .bind(cp.events)
        .bind(cp.groups)
        .bind(cp.rejected)
        .bind(cp.throttled)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET progress_done = $3, progress_total = $4 \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(done)
        .bind(total)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })
}

/// Where the job row stands after a run (or at its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Runs now: no wait, no error of an earlier wait.
    Running,
    /// Waits for WeCom until then (a storm of slow-downs, an outage), saying so in its
    /// error code while it stays running.
    Waiting(DateTime<Utc>),
    Succeeded,
}

/// Writes `state` on the job's row at `now`.
pub async fn mark(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    state: JobState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (set, at) = match state {
        JobState::Running => (
            "status = 'running', next_run_at = NULL, error_code = NULL, \
             started_at = COALESCE(started_at, $3)",
            now,
        ),
        JobState::Waiting(until) => (
            "status = 'running', next_run_at = $3, error_code = 'WAITING_FOR_WECOM'",
            until,
        ),
        JobState::Succeeded => (
            "status = 'succeeded', next_run_at = NULL, error_code = NULL, finished_at = $3",
            now,
        ),
    };
    let sql = format!("UPDATE jobs SET {set} WHERE tenant_id = $1 AND job_id = $2");
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(job_id)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ())
    })
}
