//! Long work as durable rows: created by a mutation, run by the server in the
//! background, resumed when the server restarts. Projection rebuilds are jobs today;
//! handovers will be.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::{on_pool, rebuild, registry};
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::Database;
use crate::reads::{JobRecord, JobStatus};

pub const KIND_REBUILD: &str = "rebuild";

#[derive(Debug, Clone)]
pub struct Jobs {
    db: Database,
    clock: Clock,
    /// One rebuild at a time: two would fight over the same `__next` tables.
    rebuild_lock: Arc<tokio::sync::Mutex<()>>,
}

const COLUMNS: &str = "job_id, kind, status, input, created_by, progress_done, progress_total, \
    error_code, created_at, started_at, finished_at";

impl Jobs {
    pub fn new(db: &Database, clock: Clock) -> Self {
        Self {
            db: db.clone(),
            clock,
            rebuild_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Creates a job, or returns the one already created under `key`.
    pub async fn create(
        &self,
        tenant: &TenantId,
        kind: &str,
        input: &serde_json::Value,
        created_by: &str,
        key: &str,
    ) -> Result<(JobRecord, bool), sqlx::Error> {
        let job_id = Uuid::new_v4().simple().to_string();
        let now = self.clock.now();
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO jobs (tenant_id, job_id, kind, status, input, created_by, \
                 idempotency_key, created_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&job_id)
            .bind(kind)
            .bind(input.to_string())
            .bind(created_by)
            .bind(key)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })?;
        let job: JobRecord = on_pool!(&self.db, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
            ))
            .bind(tenant.as_str())
            .bind(key)
            .fetch_one(pool)
            .await
        })?;
        Ok((job, inserted))
    }

    async fn set(
        &self,
        tenant: &str,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
        done: i64,
        total: i64,
    ) -> Result<(), sqlx::Error> {
        let now: DateTime<Utc> = self.clock.now();
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET status = $3, error_code = $4, progress_done = $5, \
                 progress_total = $6, \
                 started_at = CASE WHEN $3 = 'running' THEN $7 ELSE started_at END, \
                 finished_at = CASE WHEN $3 IN ('succeeded', 'failed') THEN $7 ELSE finished_at END \
                 WHERE tenant_id = $1 AND job_id = $2",
            )
            .bind(tenant)
            .bind(job_id)
            .bind(status.as_str())
            .bind(error)
            .bind(done)
            .bind(total)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Runs a job to its end; a rebuild is idempotent, so a resumed one starts over.
    pub async fn run(&self, tenant: String, job: JobRecord) {
        let result = match job.kind.as_str() {
            KIND_REBUILD => self.run_rebuild(&tenant, &job).await,
            other => Err(format!("UNKNOWN_JOB_KIND {other}")),
        };
        if let Err(error) = result {
            tracing::error!(job = %job.job_id, %error, "job failed");
            let code = error
                .split_whitespace()
                .next()
                .unwrap_or("FAILED")
                .to_string();
            let _ = self
                .set(&tenant, &job.job_id, JobStatus::Failed, Some(&code), 0, 0)
                .await;
        }
    }

    async fn run_rebuild(&self, tenant: &str, job: &JobRecord) -> Result<(), String> {
        let input: serde_json::Value = serde_json::from_str(&job.input).unwrap_or_default();
        let targets: Vec<&'static registry::Projection> =
            match input.get("projection").and_then(|p| p.as_str()) {
                Some(name) => {
                    vec![registry::find(name).ok_or_else(|| format!("UNKNOWN_PROJECTION {name}"))?]
                }
                None => registry::ALL.to_vec(),
            };
        let total = targets.len() as i64;
        let _one_at_a_time = self.rebuild_lock.lock().await;
        self.set(tenant, &job.job_id, JobStatus::Running, None, 0, total)
            .await
            .map_err(|e| format!("STORE {e}"))?;
        for (done, projection) in targets.into_iter().enumerate() {
            rebuild::rebuild(&self.db, projection, false)
                .await
                .map_err(|e| format!("REBUILD_FAILED {e}"))?;
            self.set(
                tenant,
                &job.job_id,
                JobStatus::Running,
                None,
                done as i64 + 1,
                total,
            )
            .await
            .map_err(|e| format!("STORE {e}"))?;
        }
        self.set(
            tenant,
            &job.job_id,
            JobStatus::Succeeded,
            None,
            total,
            total,
        )
        .await
        .map_err(|e| format!("STORE {e}"))
    }

    /// Jobs a stopped server left queued or running, oldest first.
    pub async fn unfinished(&self) -> Result<Vec<(String, JobRecord)>, sqlx::Error> {
        let rows: Vec<(String, String)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, job_id FROM jobs WHERE status IN ('queued', 'running') \
                 ORDER BY created_at",
            )
            .fetch_all(pool)
            .await
        })?;
        let mut jobs = Vec::new();
        for (tenant, job_id) in rows {
            let job: JobRecord = on_pool!(&self.db, |pool| {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND job_id = $2"
                ))
                .bind(&tenant)
                .bind(&job_id)
                .fetch_one(pool)
                .await
            })?;
            jobs.push((tenant, job));
        }
        Ok(jobs)
    }

    /// Starts `job` in the background.
    pub fn spawn(&self, tenant: String, job: JobRecord) {
        let jobs = self.clone();
        tokio::spawn(async move { jobs.run(tenant, job).await });
    }
}
