//! The directory sync job: the corp's departments and staff read from WeCom, each
//! member of staff brought in line through the engine, progress on the job row. A sync
//! lists the whole directory, so staff the engine knows and WeCom no longer lists have
//! left.

use chrono::{DateTime, Utc};
use domain::stamp::{stream_id, Stamped};
use domain::values::{StaffId, TenantId};
use projections::on_pool;
use uuid::Uuid;

use engine::app::Engine;
use engine::commands::{Actor, CommandError, CommandMeta};
use engine::jobs::{JobKind, Jobs};
use engine::reads::{JobRecord, JobStatus};

use super::departments::{mapping, replace_departments, DirectoryError};
use super::{change, full_listing, key, root, Listed};
use crate::client::WecomApi;
use crate::inbox;

/// The `jobs.kind` of a directory sync.
pub const KIND: &str = "wecom_directory_sync";

/// Staff applied between two progress writes.
const PROGRESS_EVERY: usize = 20;

/// How one member of staff was brought in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A command appended (or found already appended under its key).
    Changed,
    /// Already in line.
    Unchanged,
    /// The domain refused the change: its code.
    Refused(&'static str),
}

/// Brings `userid`'s stream in line with what the directory says about them, at `at`,
/// as `actor`.
pub async fn apply(
    engine: &Engine,
    tenant: &TenantId,
    userid: &StaffId,
    listed: &Listed,
    at: DateTime<Utc>,
    actor: &str,
) -> Result<Applied, DirectoryError> {
    let stream = stream_id(tenant, userid.as_str());
    let (staff, version) = engine
        .staff
        .load(&stream)
        .await
        .map_err(|e| DirectoryError::Commands(Box::new(e)))?;
    let Some(command) = change(&staff, listed) else {
        return Ok(Applied::Unchanged);
    };
    let key = key(userid.as_str(), &command, version);
    let request = Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes());
    let meta = CommandMeta::new(tenant.clone(), Actor::integration(actor), request)
        .with_idempotency_key(key);
    match engine
        .staff
        .execute(&stream, Stamped::new(at, command), &meta)
        .await
    {
        Ok(_) | Err(CommandError::IdempotencyKeyReused) => Ok(Applied::Changed),
        Err(CommandError::Rejected(e)) => Ok(Applied::Refused(e.code())),
        Err(other) => Err(DirectoryError::Commands(Box::new(other))),
    }
}

/// Every member of staff the tenant's log has a stream for.
async fn known_staff(engine: &Engine, tenant: &TenantId) -> Result<Vec<String>, DirectoryError> {
    // A range on the primary key (aggregate_type, aggregate_id): one tenant's staff
    // streams, whatever the size of the log.
    let (from, to) = (format!("{tenant}:"), format!("{tenant};"));
    let streams: Vec<String> = on_pool!(&engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Staff' \
             AND aggregate_id > $1 AND aggregate_id < $2",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(pool)
        .await
    })?;
    Ok(streams
        .into_iter()
        .filter_map(|s| s.split_once(':').map(|(_, local)| local.to_owned()))
        .collect())
}

/// The directory sync as a kind of job; started by the `syncWecomDirectory` mutation. A
/// resumed sync starts over: every change it makes is keyed, so what it applied before
/// is not applied again.
#[derive(Debug, Clone)]
pub struct DirectorySync {
    pub api: WecomApi,
}

#[async_trait::async_trait]
impl JobKind for DirectorySync {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), String> {
        self.sync(jobs, tenant, job)
            .await
            .map_err(|e| format!("{} {e}", e.code()))
    }
}

impl DirectorySync {
    async fn sync(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), DirectoryError> {
        let engine = jobs.engine();
        let tenant_id = TenantId::parse(tenant).map_err(|e| DirectoryError::Commands(e.into()))?;
        let credentials = inbox::config(&engine.db, &tenant_id)
            .await?
            .and_then(|c| c.api)
            .ok_or(DirectoryError::NoCredentials)?;
        let api = self.api.for_tenant(tenant, &credentials);
        let departments = api.departments(None).await?;
        let root = root(&departments).ok_or(DirectoryError::NoDepartments)?;
        let users = api.users(root).await?;
        let now = jobs.clock().now();
        replace_departments(&engine.db, &tenant_id, &departments, now).await?;
        let mapped = mapping(&engine.db, &tenant_id).await?;

        let everyone = full_listing(known_staff(engine, &tenant_id).await?, &users, &mapped);
        let total = everyone.len() as i64;
        let progress =
            |done: usize, status| jobs.set(tenant, &job.job_id, status, None, done as i64, total);
        progress(0, JobStatus::Running).await?;
        let mut refused = 0;
        for (done, (userid, listed)) in everyone.iter().enumerate() {
            let outcome = match StaffId::parse(userid.as_str()) {
                Ok(id) => apply(engine, &tenant_id, &id, listed, now, "wecom-directory").await?,
                Err(_) => Applied::Refused("INVALID_STAFF_ID"),
            };
            if let Applied::Refused(code) = outcome {
                refused += 1;
                tracing::warn!(%tenant, %userid, code, "directory change refused");
            }
            if (done + 1) % PROGRESS_EVERY == 0 {
                progress(done + 1, JobStatus::Running).await?;
            }
        }
        tracing::info!(%tenant, total, refused, "WeCom directory synced");
        progress(everyone.len(), JobStatus::Succeeded).await?;
        Ok(())
    }
}
