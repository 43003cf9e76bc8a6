//! The first import (issue 16): a chain starting on the engine brings in the tag
//! library, customers and groups its guides already have in WeCom, as a durable job.
//!
//! Phases, in order: the tag library (`get_corp_tag_list`), the staff with customers
//! (`get_follow_user_list`), each slice of 100 staff's customers page by page
//! (`batch/get_by_user`, 100 relations a page), then the groups (`groupchat/list`,
//! `groupchat/get`). Every relation becomes one [`CustomerCommand::ImportRelation`]
//! stamped with WeCom's `createtime`, by the actor `integration:wecom-import`, under an
//! idempotency key named for (customer, staff, fact); a page's relations go through
//! the engine in one batch. The position (phase, staff slice, cursor) is saved after
//! every page, so a restarted job reads at most one page again, and that page's keys
//! append nothing twice. Memory holds one page, whatever the tenant's size.
//!
//! WeCom's slow-downs (45009, 45011, 45033) and outages are waited out: a few tries
//! with a growing pause in the job, then the job waits (still running, with a
//! `next_run_at`) and the runner's tick resumes it. See docs/adr/0015-wecom-import.md.
//!
//! # Layout
//!
//! - `page`: WeCom's answers as commands, and their times. Pure.
//! - `checkpoint`: the job's position and tallies (`wecom_import`) and its job row.

mod checkpoint;
mod page;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::customer::CustomerCommand;
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::TagLibrary;
use domain::values::{GroupId, TenantId};
use uuid::Uuid;

use engine::commands::{Actor, Batched, CommandError, CommandMeta};
use engine::jobs::{JobKind, Jobs};
use engine::reads::JobRecord;

use crate::client::{ClientError, ImportedContact, TagFilter, TenantApi, WecomApi};
use crate::inbox::{self, InboxError};
use crate::process::{chat_steps, tag_steps, ChatChange, Run, Step, StepResult};

pub use checkpoint::{Checkpoint, JobState, Phase};
pub use page::{instant, planned, rounds, step_time, Planned};

/// The `jobs.kind` of an import.
pub const KIND: &str = "wecom_import";

/// What an import is about: one unfinished import per tenant.
pub const SUBJECT: &str = "wecom";

/// The integration every imported event names as its actor (`integration:wecom-import`).
pub const ACTOR: &str = "wecom-import";

/// Page sizes and patience. The defaults are WeCom's largest pages and a patience
/// measured in minutes; tests shrink the waits.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Staff per `batch/get_by_user` call (WeCom: at most 100).
    pub staff_per_call: usize,
    /// Relations per page (WeCom: at most 100).
    pub contacts_per_page: u32,
    /// Groups per `groupchat/list` page (WeCom: at most 1,000).
    pub chats_per_page: u32,
    /// Tries of one call on a transient answer before the job waits.
    pub tries: u32,
    /// The pause after the first transient answer; it doubles on every further one.
    pub first_pause: Duration,
    pub max_pause: Duration,
    /// How long the job waits after its tries ran out.
    pub wait: Duration,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            staff_per_call: 100,
            contacts_per_page: 100,
            chats_per_page: 1_000,
            tries: 6,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(30),
            wait: Duration::from_secs(300),
        }
    }
}

/// The pause after the `failures`-th transient answer in a row: doubling from
/// `first_pause`, at most `max_pause`. Pure.
pub fn pause(settings: &ImportSettings, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    settings
        .first_pause
        .saturating_mul(1 << doublings)
        .min(settings.max_pause)
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the tenant has no WeCom API credentials (scrm wecom configure --corp-id, with the corp secret)")]
    NoCredentials,
    #[error("the job's tenant cannot be read: {0}")]
    BadTenant(#[from] domain::values::ParseError),
    #[error("{0}")]
    Wecom(#[from] ClientError),
    #[error("the store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ImportError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCredentials => "NO_WECOM_CREDENTIALS",
            Self::BadTenant(_) => "BAD_INPUT",
            Self::Wecom(_) => "WECOM_API",
            Self::Store(_) => "STORE",
        }
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<InboxError> for ImportError {
    fn from(e: InboxError) -> Self {
        Self::Store(Box::new(e))
    }
}

fn store<E: std::error::Error + Send + Sync + 'static>(e: E) -> ImportError {
    ImportError::Store(Box::new(e))
}

/// Imports as a kind of job the runner runs.
#[derive(Debug, Clone, Default)]
pub struct WecomImportJobs {
    pub api: WecomApi,
    pub settings: ImportSettings,
}

#[async_trait::async_trait]
impl JobKind for WecomImportJobs {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), String> {
        run(jobs, &self.api, &self.settings, tenant, job)
            .await
            .map_err(|e| format!("{} {e}", e.code()))
    }
}

/// Runs an import as far as it goes now: to its end, or until WeCom makes it wait.
pub async fn run(
    jobs: &Jobs,
    api: &WecomApi,
    settings: &ImportSettings,
    tenant: &str,
    job: &JobRecord,
) -> Result<(), ImportError> {
    let tenant = TenantId::parse(tenant)?;
    let db = jobs.db();
    let credentials = inbox::config(db, &tenant)
        .await?
        .and_then(|c| c.api)
        .ok_or(ImportError::NoCredentials)?;
    let api = api.for_tenant(tenant.as_str(), &credentials);
    let now = jobs.clock().now();
    let mut cp = checkpoint::load_or_start(db, &tenant, &job.job_id, now).await?;
    checkpoint::mark(db, &tenant, &job.job_id, JobState::Running, now).await?;
    let import = Import {
        jobs,
        api: &api,
        settings,
        meta: CommandMeta::new(
            tenant.clone(),
            Actor::integration(ACTOR),
            // Every event of the job shares one request id: the job is the request.
            Uuid::new_v5(&Uuid::NAMESPACE_OID, job.job_id.as_bytes()),
        ),
        tenant,
        job_id: job.job_id.clone(),
    };
    match import.phases(&mut cp).await {
        Ok(()) => {
            let done = JobState::Succeeded;
            Ok(checkpoint::mark(db, &import.tenant, &import.job_id, done, import.now()).await?)
        }
        Err(ImportError::Wecom(error)) if error.is_transient() => {
            let until = import.now() + settings.wait;
            tracing::warn!(job = %import.job_id, %error, %until, "wecom import waits for WeCom");
            import.save(&cp).await?;
            let waiting = JobState::Waiting(until);
            Ok(checkpoint::mark(db, &import.tenant, &import.job_id, waiting, import.now()).await?)
        }
        Err(other) => {
            // The tallies so far stay visible next to the failed job.
            let _ = import.save(&cp).await;
            Err(other)
        }
    }
}

/// Everything a run needs, resolved once.
struct Import<'a> {
    jobs: &'a Jobs,
    api: &'a TenantApi<'a>,
    settings: &'a ImportSettings,
    tenant: TenantId,
    job_id: String,
    meta: CommandMeta,
}

impl Import<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.jobs.clock().now()
    }

    async fn save(&self, cp: &Checkpoint) -> Result<(), ImportError> {
        let total = cp.staff.len() as i64;
        let done = cp.staff_done(self.settings.staff_per_call);
        checkpoint::save(
            self.jobs.db(),
            &self.tenant,
            &self.job_id,
            cp,
            (done, total),
            self.now(),
        )
        .await?;
        Ok(())
    }

    /// `call` until it answers, pausing after each transient answer, at most
    /// `tries` times; slow-downs are tallied.
    async fn call<T, F, Fut>(&self, cp: &mut Checkpoint, call: F) -> Result<T, ImportError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut failures = 0;
        loop {
            match call().await {
                Ok(answer) => return Ok(answer),
                Err(error) if error.is_transient() => {
                    cp.throttled += i64::from(error.is_rate_limit());
                    failures += 1;
                    if failures >= self.settings.tries {
                        return Err(error.into());
                    }
                    tokio::time::sleep(pause(self.settings, failures)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn phases(&self, cp: &mut Checkpoint) -> Result<(), ImportError> {
        loop {
            match cp.phase {
                Phase::Tags => {
                    self.tags(cp).await?;
                    cp.phase = Phase::Staff;
                }
                Phase::Staff => {
                    cp.staff = self.call(cp, || self.api.follow_users()).await?;
                    cp.phase = Phase::Customers;
                    cp.chunk = 0;
                    cp.cursor.clear();
                }
                Phase::Customers => {
                    self.customers(cp).await?;
                    cp.phase = Phase::Groups;
                    cp.cursor.clear();
                }
                Phase::Groups => {
                    self.groups(cp).await?;
                    cp.phase = Phase::Done;
                }
                Phase::Done => return Ok(()),
            }
            self.save(cp).await?;
        }
    }

    async fn library(&self) -> Result<TagLibrary, ImportError> {
        let stream = stream_id(&self.tenant, TAG_LIBRARY_LOCAL_ID);
        let (library, _) = self.jobs.engine().tags.load(&stream).await.map_err(store)?;
        Ok(library)
    }

    /// Runs `steps` of one WeCom object (keyed by `key`), each at the time `at` gives.
    async fn steps(
        &self,
        cp: &mut Checkpoint,
        key: &str,
        steps: Vec<Step>,
        at: impl Fn(&Step) -> DateTime<Utc>,
    ) -> Result<(), ImportError> {
        for step in steps {
            let run = Run {
                engine: self.jobs.engine(),
                tenant: &self.tenant,
                at: at(&step),
                meta: &self.meta,
                key,
            };
            if let StepResult::Rejected(code, message) = run.execute(step).await? {
                cp.rejected += 1;
                tracing::info!(job = %self.job_id, key, code, %message, "import step refused");
            }
        }
        Ok(())
    }

    /// The tag library as WeCom has it. WeCom's tags carry no time the engine keeps,
    /// so the library changes at the import's own time.
    async fn tags(&self, cp: &mut Checkpoint) -> Result<(), ImportError> {
        let groups = self
            .call(cp, || self.api.corp_tags(&TagFilter::All))
            .await?;
        match tag_steps(&self.library().await?, &groups) {
            Ok(steps) => {
                let now = self.now();
                self.steps(cp, "wecom-import:library", steps, |_| now).await
            }
            Err(plan) => {
                cp.rejected += 1;
                tracing::warn!(job = %self.job_id, ?plan, "tag library not imported");
                Ok(())
            }
        }
    }

    /// Every staff slice's customers, page by page, from the saved position on.
    async fn customers(&self, cp: &mut Checkpoint) -> Result<(), ImportError> {
        let library = self.library().await?;
        let size = self.settings.staff_per_call.max(1);
        loop {
            let start = usize::try_from(cp.chunk).unwrap_or(usize::MAX);
            let Some(slice) = start.checked_mul(size).filter(|s| *s < cp.staff.len()) else {
                return Ok(());
            };
            let staff = cp.staff[slice..(slice + size).min(cp.staff.len())].to_vec();
            let cursor = cp.cursor.clone();
            let limit = self.settings.contacts_per_page;
            let page = self
                .call(cp, || self.api.contacts_by_user(&staff, &cursor, limit))
                .await?;
            self.import_page(cp, &library, &page.external_contact_list)
                .await?;
            if page.next_cursor.is_empty() {
                cp.chunk += 1;
                cp.cursor.clear();
            } else {
                cp.cursor = page.next_cursor;
            }
            self.save(cp).await?;
        }
    }

    /// One page's relations through the engine: a batch per round of distinct
    /// customers.
    async fn import_page(
        &self,
        cp: &mut Checkpoint,
        library: &TagLibrary,
        contacts: &[ImportedContact],
    ) -> Result<(), ImportError> {
        let now = self.now();
        let mut listed = Vec::with_capacity(contacts.len());
        for contact in contacts {
            cp.relations_seen += 1;
            match planned(contact, library, now) {
                Ok(p) => listed.push(p),
                Err(reason) => {
                    cp.rejected += 1;
                    tracing::info!(job = %self.job_id, %reason, "relation not imported");
                }
            }
        }
        for round in rounds(listed) {
            let batch = round
                .into_iter()
                .map(|p| Batched {
                    aggregate_id: stream_id(&self.tenant, p.customer.as_str()),
                    meta: self.meta.clone().with_idempotency_key(p.idempotency_key()),
                    command: Stamped::new(p.at, CustomerCommand::ImportRelation(p.relation)),
                })
                .collect();
            for answer in self.jobs.engine().customers.execute_many(batch).await {
                match answer {
                    Ok(outcome) if outcome.appended > 0 => {
                        cp.relations_imported += 1;
                        cp.events += outcome.appended as i64;
                    }
                    Ok(_) => {}
                    Err(CommandError::Rejected(_)) => cp.rejected += 1,
                    // An earlier import brought this relation in as WeCom had it then.
                    Err(CommandError::IdempotencyKeyReused) => {}
                    Err(other) => return Err(store(other)),
                }
            }
        }
        Ok(())
    }

    /// Every group as WeCom has it, page by page, from the saved position on: created
    /// with its owner, name and notice, its members seated at their join times.
    async fn groups(&self, cp: &mut Checkpoint) -> Result<(), ImportError> {
        let engine = self.jobs.engine();
        let capacity = engine::tenants::group_capacity(self.jobs.db(), &self.tenant).await?;
        loop {
            let cursor = cp.cursor.clone();
            let limit = self.settings.chats_per_page;
            let page = self
                .call(cp, || self.api.group_chats(&cursor, limit))
                .await?;
            for listed in &page.group_chat_list {
                let chat = self
                    .call(cp, || self.api.group_chat(&listed.chat_id))
                    .await?;
                cp.groups += 1;
                let Ok(group) = GroupId::parse(chat.chat_id.as_str()) else {
                    cp.rejected += 1;
                    continue;
                };
                let (state, _) = engine
                    .groups
                    .load(&stream_id(&self.tenant, group.as_str()))
                    .await
                    .map_err(store)?;
                match chat_steps(&group, &state, capacity, ChatChange::Create, &chat) {
                    Ok(steps) => {
                        let now = self.now();
                        let key = format!("wecom-import:{group}");
                        self.steps(cp, &key, steps, |s| step_time(s, &chat, now))
                            .await?;
                    }
                    Err(plan) => {
                        cp.rejected += 1;
                        tracing::info!(job = %self.job_id, %group, ?plan, "group not imported");
                    }
                }
            }
            if page.next_cursor.is_empty() {
                return Ok(());
            }
            cp.cursor = page.next_cursor;
            self.save(cp).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_the_first_and_stops_at_the_cap() {
        let s = ImportSettings::default();
        let secs = |n| pause(&s, n).as_secs();
        assert_eq!(
            (secs(1), secs(2), secs(3), secs(5), secs(6), secs(40)),
            (1, 2, 4, 16, 30, 30)
        );
    }
}
