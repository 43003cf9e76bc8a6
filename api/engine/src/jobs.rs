//! Long work as durable rows: created by a mutation, run by the server in the
//! background, resumed when the server restarts. Projection rebuilds and handovers are
//! jobs. A job that has to wait (tomorrow's share of group transfers) keeps running
//! with a `next_run_at`, and the server's [`Jobs::tick`] picks it up again then.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::{on_pool, rebuild, registry};
use uuid::Uuid;

use crate::app::Engine;
use crate::clock::Clock;
use crate::db::Database;
use crate::lease::try_lease;
use crate::reads::{JobRecord, JobStatus, JOB_COLUMNS as COLUMNS};

pub const KIND_REBUILD: &str = "rebuild";

/// A kind of job other than a rebuild (which the runner knows itself): how a job of
/// that kind runs. The kinds are registered where the server is put together, so
/// the runner does not depend on what its jobs do.
#[async_trait::async_trait]
pub trait JobKind: Send + Sync {
    /// The `jobs.kind` column's value.
    fn kind(&self) -> &'static str;
    /// Runs `job` as far as it can go now. An error starts with its code.
    async fn run(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), String>;
}

/// Work the server does on every tick besides continuing due jobs (handover outcomes,
/// the WeCom inbox).
#[async_trait::async_trait]
pub trait Periodic: Send + Sync {
    async fn tick(&self, jobs: &Jobs);
}

#[derive(Clone)]
pub struct Jobs {
    engine: Arc<Engine>,
    db: Database,
    clock: Clock,
    kinds: Arc<Vec<Arc<dyn JobKind>>>,
    periodic: Arc<Vec<Arc<dyn Periodic>>>,
    /// One rebuild at a time: two would fight over the same `__next` tables.
    rebuild_lock: Arc<tokio::sync::Mutex<()>>,
    /// Jobs this process is running: a resumed or re-ticked job never runs twice at once.
    running: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Takes a job out of [`Jobs::running`] when its run ends, however it ends.
struct RunningGuard {
    running: Arc<Mutex<HashSet<String>>>,
    job_id: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.job_id);
        }
    }
}

impl Jobs {
    pub fn new(engine: Arc<Engine>, clock: Clock) -> Self {
        Self {
            db: engine.db.clone(),
            engine,
            clock,
            kinds: Arc::new(Vec::new()),
            periodic: Arc::new(Vec::new()),
            rebuild_lock: Arc::new(tokio::sync::Mutex::new(())),
            running: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Runs jobs of `kind` too.
    pub fn with_kind(mut self, kind: Arc<dyn JobKind>) -> Self {
        Arc::make_mut(&mut self.kinds).push(kind);
        self
    }

    /// Does `work` on every tick too.
    pub fn with_periodic(mut self, work: Arc<dyn Periodic>) -> Self {
        Arc::make_mut(&mut self.periodic).push(work);
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Creates a job, or returns the one already created under `key`, or (with a
    /// `subject`) the unfinished job of the same kind about the same subject. The bool
    /// says whether this call created it.
    pub async fn create(
        &self,
        tenant: &TenantId,
        kind: &str,
        input: &serde_json::Value,
        created_by: &str,
        key: &str,
        subject: Option<&str>,
    ) -> Result<(JobRecord, bool), sqlx::Error> {
        if let Some(job) = self.unfinished_about(tenant, kind, subject).await? {
            return Ok((job, false));
        }
        let job_id = Uuid::new_v4().simple().to_string();
        let now = self.clock.now();
        // No conflict target: either the key or the one-unfinished-per-subject index
        // may be what an earlier or concurrent start already holds.
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO jobs (tenant_id, job_id, kind, status, input, created_by, \
                 idempotency_key, created_at, subject) \
                 VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&job_id)
            .bind(kind)
            .bind(input.to_string())
            .bind(created_by)
            .bind(key)
            .bind(now)
            .bind(subject)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })?;
        let by_key: Option<JobRecord> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
            ))
            .bind(tenant.as_str())
            .bind(key)
            .fetch_optional(pool)
            .await
        })?;
        let job = match by_key {
            Some(job) => job,
            None => self
                .unfinished_about(tenant, kind, subject)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?,
        };
        Ok((job, inserted))
    }

    async fn unfinished_about(
        &self,
        tenant: &TenantId,
        kind: &str,
        subject: Option<&str>,
    ) -> Result<Option<JobRecord>, sqlx::Error> {
        let Some(subject) = subject else {
            return Ok(None);
        };
        on_pool!(&self.db, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND kind = $2 \
                 AND subject = $3 AND status IN ('queued', 'running')"
            ))
            .bind(tenant.as_str())
            .bind(kind)
            .bind(subject)
            .fetch_optional(pool)
            .await
        })
    }

    /// Writes a job's status and progress (done of total); kinds of other crates
    /// report through it.
    pub async fn set(
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

    /// Marks a job failed with `code`, keeping the progress it made.
    async fn fail(&self, tenant: &str, job_id: &str, code: &str) -> Result<(), sqlx::Error> {
        let now: DateTime<Utc> = self.clock.now();
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET status = 'failed', error_code = $3, finished_at = $4, \
                 next_run_at = NULL WHERE tenant_id = $1 AND job_id = $2",
            )
            .bind(tenant)
            .bind(job_id)
            .bind(code)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Runs a job as far as it can go now: a rebuild to its end (it is idempotent, so a
    /// resumed one starts over), a handover up to its next wait.
    pub async fn run(&self, tenant: String, job: JobRecord) {
        let kind = self.kinds.iter().find(|k| k.kind() == job.kind);
        let result = match (job.kind.as_str(), kind) {
            (KIND_REBUILD, _) => self.run_rebuild(&tenant, &job).await,
            (_, Some(kind)) => kind.run(self, &tenant, &job).await,
            (other, None) => Err(format!("UNKNOWN_JOB_KIND {other}")),
        };
        if let Err(error) = result {
            tracing::error!(job = %job.job_id, %error, "job failed");
            let code = error
                .split_whitespace()
                .next()
                .unwrap_or("FAILED")
                .to_string();
            let _ = self.fail(&tenant, &job.job_id, &code).await;
        }
    }

    async fn run_rebuild(&self, tenant: &str, job: &JobRecord) -> Result<(), String> {
        let input: serde_json::Value = serde_json::from_str(&job.input).unwrap_or_default();
        let targets: Vec<&'static registry::Projection> =
            match input.get("projection").and_then(|p| p.as_str()) {
                Some(name) => {
                    vec![registry::find(name).ok_or_else(|| format!("UNKNOWN_PROJECTION {name}"))?]
                }
                None => registry::ALL.iter().collect(),
            };
        let total = targets.len() as i64;
        let _one_at_a_time = self.rebuild_lock.lock().await;
        self.set(tenant, &job.job_id, JobStatus::Running, None, 0, total)
            .await
            .map_err(|e| format!("STORE {e}"))?;
        // A tenant's job rebuilds that tenant's rows only; the deployment's are rebuilt
        // from the command line.
        let options = rebuild::Options {
            scope: rebuild::Scope::Tenant(tenant.to_string()),
            ..rebuild::Options::default()
        };
        rebuild::rebuild_with(&self.db, &targets, &options)
            .await
            .map_err(|e| format!("REBUILD_FAILED {e}"))?;
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

    async fn load(&self, tenant: &str, job_id: &str) -> Result<Option<JobRecord>, sqlx::Error> {
        on_pool!(&self.db, |pool| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND job_id = $2"
            ))
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(pool)
            .await
        })
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
            if let Some(job) = self.load(&tenant, &job_id).await? {
                jobs.push((tenant, job));
            }
        }
        Ok(jobs)
    }

    /// Starts `job` in the background, unless this process is already running it.
    pub fn spawn(&self, tenant: String, job: JobRecord) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if !running.insert(job.job_id.clone()) {
            return;
        }
        drop(running);
        let guard = RunningGuard {
            running: self.running.clone(),
            job_id: job.job_id.clone(),
        };
        let jobs = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            match try_lease(&jobs.db, &format!("scrm-job:{}", job.job_id)).await {
                // Read again under the lease: another server may have finished it since.
                Ok(Some(lease)) => {
                    match jobs.load(&tenant, &job.job_id).await {
                        Ok(Some(fresh))
                            if matches!(fresh.status.as_str(), "queued" | "running") =>
                        {
                            jobs.run(tenant, fresh).await
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(job = %job.job_id, %error, "could not load job")
                        }
                    }
                    lease.release().await;
                }
                // Another server runs it; its tick or restart picks it up if that one dies.
                Ok(None) => tracing::debug!(job = %job.job_id, "job held by another process"),
                Err(error) => tracing::error!(job = %job.job_id, %error, "could not lease job"),
            }
        });
    }

    /// Running jobs whose wait is over, oldest first.
    async fn due(&self) -> Result<Vec<(String, JobRecord)>, sqlx::Error> {
        let now = self.clock.now();
        let rows: Vec<(String, String)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, job_id FROM jobs WHERE status = 'running' \
                 AND next_run_at IS NOT NULL AND next_run_at <= $1 ORDER BY created_at",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        let mut jobs = Vec::new();
        for (tenant, job_id) in rows {
            if let Some(job) = self.load(&tenant, &job_id).await? {
                jobs.push((tenant, job));
            }
        }
        Ok(jobs)
    }

    /// The server's periodic step: continues jobs whose wait is over, then does the
    /// registered periodic work. Time is the injectable clock's, so tests move it
    /// instead of waiting.
    pub async fn tick(&self) {
        match self.due().await {
            Ok(due) => {
                for (tenant, job) in due {
                    self.spawn(tenant, job);
                }
            }
            Err(error) => tracing::error!(%error, "could not list due jobs"),
        }
        for work in self.periodic.iter() {
            work.tick(self).await;
        }
    }
}
