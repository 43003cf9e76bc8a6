//! The one-click handover (一键继承) as a durable job, and the auto-accept that
//! completes handovers nobody answered within 24 hours.
//!
//! A handover job plans once ([`domain::handover_plan`], on facts read from the
//! reassignment view) and writes one row per customer and group ([`items`]). It then
//! requests the customers batch by batch (at most 100, one successor per batch, as
//! WeCom's API takes them) and moves the groups, at most 300 a day per original owner;
//! the rest wait for their day with the job still running and a `next_run_at`. Every
//! command carries an idempotency key derived from the job and the item, and each
//! batch's outcomes are committed with the job's progress, so a job resumed after a
//! crash neither asks twice nor skips anything.

mod facts;
pub mod items;
pub mod transfer;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use domain::customer::{AcceptTrigger, CustomerCommand, CustomerError, HandoverKind};
use domain::group::GroupCommand;
use domain::handover_plan::{self, PlanError, PlanInput, Strategy, Successor, TransferStatus};
use domain::staff::{StaffCommand, StaffError};
use domain::stamp::{local_day, local_id, stream_id, Stamped};
use domain::values::{ExternalUserId, GroupId, StaffId, TenantId};
use projections::on_pool;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::Engine;
use crate::commands::{Actor, Batched, CommandError, CommandMeta};
use crate::db::Database;
use crate::jobs::{JobKind, Jobs, Periodic};
use crate::lease::try_lease;
use crate::outbox::{self, Call};
use crate::reads::JobRecord;
use crate::sweep::{self, Due};

pub use items::{sync_outcomes, OutcomeCount};

/// Due handovers the auto-accept takes per tick.
const ACCEPTS_PER_TICK: i64 = 10_000;

/// How the customers are spread, as the job stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyInput {
    Single,
    Balanced,
}

/// Which WeCom handover, as the job stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindInput {
    Resigned,
    OnJob,
}

impl KindInput {
    pub fn domain(self) -> HandoverKind {
        match self {
            Self::Resigned => HandoverKind::Resigned,
            Self::OnJob => HandoverKind::OnJob,
        }
    }
}

/// A handover job's input (the `jobs.input` column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverJobInput {
    pub from: String,
    pub successors: Vec<String>,
    pub strategy: StrategyInput,
    pub kind: KindInput,
    /// Only these customers (and no groups); absent: everything `from` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<String>>,
}

/// Why a handover job stopped. A rejected customer or group is not an error: it is
/// that item's outcome.
#[derive(Debug, thiserror::Error)]
pub enum HandoverJobError {
    #[error("the job's input cannot be read: {0}")]
    BadInput(#[from] serde_json::Error),
    /// An id in the input (or planned from it) the domain does not accept.
    #[error("the job's input cannot be read: {0}")]
    BadId(#[from] domain::values::ParseError),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("the staff member handing over is unknown")]
    UnknownStaff,
    #[error("the store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the read models could not catch up: {0}")]
    Projections(#[from] projections::ProjectionError),
}

impl HandoverJobError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) | Self::BadId(_) => "BAD_INPUT",
            Self::Plan(e) => e.code(),
            Self::UnknownStaff => "UNKNOWN_STAFF",
            Self::Store(_) => "STORE",
            Self::Projections(_) => "PROJECTIONS",
        }
    }
}

impl From<sqlx::Error> for HandoverJobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

fn store<E: std::error::Error + Send + Sync + 'static>(e: CommandError<E>) -> HandoverJobError {
    HandoverJobError::Store(Box::new(e))
}

/// The id of the handover a job requests for one customer: the same on every resume.
pub fn handover_id(tenant: &TenantId, job_id: &str, customer: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("scrm/{tenant}/handover-job/{job_id}/{customer}").as_bytes(),
    )
}

/// The first instant of tenant-local `day`.
fn start_of(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// Everything a run needs, resolved once.
struct Run<'a> {
    engine: &'a Engine,
    db: &'a Database,
    jobs: &'a Jobs,
    tenant: TenantId,
    job_id: String,
    from: StaffId,
    kind: HandoverKind,
    from_departed_at: Option<DateTime<Utc>>,
    tz: Tz,
    meta: CommandMeta,
    /// The tenant acts in WeCom: every request writes its transfer call, and WeCom's
    /// answers conclude the handovers (docs/adr/0013-wecom-outbox.md). Otherwise the
    /// engine runs alone and the 24-hour rule concludes them.
    wecom: bool,
}

/// Runs a handover job as far as it can go now: plans on the first run, requests every
/// customer still to request, moves the groups due today, then either succeeds or
/// waits for the next day's group transfers.
pub async fn run(jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), HandoverJobError> {
    let input: HandoverJobInput = serde_json::from_str(&job.input)?;
    let tenant = TenantId::parse(tenant)?;
    let from = StaffId::parse(input.from.as_str())?;
    let engine = jobs.engine();
    let db = jobs.db();
    let (staff, _) = engine
        .staff
        .load(&stream_id(&tenant, from.as_str()))
        .await
        .map_err(store)?;
    if !staff.is_registered() {
        return Err(HandoverJobError::UnknownStaff);
    }
    let run = Run {
        engine,
        db,
        jobs,
        tz: crate::tenants::time_zone(db, &tenant).await?,
        wecom: outbox::enabled(db, &tenant).await?,
        meta: CommandMeta::new(
            tenant.clone(),
            Actor::system(&job.job_id),
            // Every event of the job shares one request id: the job is the request.
            Uuid::new_v5(&Uuid::NAMESPACE_OID, job.job_id.as_bytes()),
        ),
        tenant,
        job_id: job.job_id.clone(),
        kind: input.kind.domain(),
        from_departed_at: staff.departed_at(),
        from,
    };
    if items::planned(db, &run.tenant, &run.job_id).await? {
        items::recount(db, &run.tenant, &run.job_id).await?;
    } else {
        run.plan(&input, &staff).await?;
    }
    items::analyze(db).await?;
    run.request_customers().await?;
    let now = jobs.clock().now();
    match run.move_groups().await? {
        Some(day) => items::wait(db, &run.tenant, &run.job_id, start_of(day, run.tz)).await?,
        None => items::succeed(db, &run.tenant, &run.job_id, now).await?,
    }
    Ok(())
}

impl Run<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.jobs.clock().now()
    }

    fn keyed(&self, key: String) -> CommandMeta {
        self.meta.clone().with_idempotency_key(key)
    }

    /// Reads the facts once the reassignment view has caught up with the log, plans,
    /// and writes the plan's rows.
    async fn plan(
        &self,
        input: &HandoverJobInput,
        staff: &domain::staff::Staff,
    ) -> Result<(), HandoverJobError> {
        projections::projector::catch_up(self.db).await?;
        let now = self.now();
        let today = local_day(now, self.tz);
        let mut successors = Vec::new();
        for id in &input.successors {
            let id = StaffId::parse(id.as_str())?;
            let (state, _) = self
                .engine
                .staff
                .load(&stream_id(&self.tenant, id.as_str()))
                .await
                .map_err(store)?;
            // Someone who left since the job was asked for takes nobody over.
            if !state.is_registered() || state.departed_at().is_some() {
                continue;
            }
            successors.push(Successor {
                customers: facts::customer_count(self.db, &self.tenant, &id).await?,
                limit: state.customer_limit(),
                staff: id,
            });
        }
        let input = PlanInput {
            from: self.from.clone(),
            successors,
            strategy: match input.strategy {
                StrategyInput::Single => Strategy::Single,
                StrategyInput::Balanced => Strategy::Balanced,
            },
            customers: facts::customers(self.db, &self.tenant, &self.from, now).await?,
            groups: facts::groups(self.db, &self.tenant, &self.from, now).await?,
            today,
            groups_claimed_today: staff.groups_claimed_on(today),
            only: input
                .customers
                .as_ref()
                .map(|ids| {
                    ids.iter()
                        .map(|id| ExternalUserId::parse(id.as_str()))
                        .collect::<Result<_, _>>()
                })
                .transpose()?,
        };
        let plan = handover_plan::plan(&input)?;
        let rows = items::from_plan(&plan, today, |customer| {
            handover_id(&self.tenant, &self.job_id, customer).to_string()
        });
        tracing::info!(
            job = %self.job_id,
            customers = plan.customers_planned(),
            customers_skipped = plan.customers_skipped.len(),
            groups = plan.groups_planned(),
            groups_skipped = plan.groups_skipped.len(),
            "handover planned"
        );
        items::insert(self.db, &self.tenant, &self.job_id, &rows, now).await?;
        Ok(())
    }

    /// Requests every planned customer, one batch (one successor, at most 100) at a
    /// time: the batch's streams are read in one query and its requests appended in one
    /// transaction, then its outcomes are committed with the job's progress.
    async fn request_customers(&self) -> Result<(), HandoverJobError> {
        loop {
            let batch = items::next_customers(self.db, &self.tenant, &self.job_id).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let at = self.now();
            let commands = batch
                .iter()
                .map(|todo| self.request(todo, at))
                .collect::<Result<Vec<_>, _>>()?;
            let answers = if self.wecom {
                let calls = |appending: &[&Batched<CustomerCommand>]| {
                    self.transfer_call(appending).into_iter().collect()
                };
                self.engine
                    .customers
                    .execute_many_calling(commands, &calls)
                    .await
            } else {
                self.engine.customers.execute_many(commands).await
            };
            let mut done = Vec::with_capacity(batch.len());
            for (todo, answer) in batch.into_iter().zip(answers) {
                let (code, status) = match answer {
                    Ok(_) => (items::REQUESTED.to_string(), TransferStatus::Waiting),
                    Err(CommandError::Rejected(e)) => (
                        e.code().to_string(),
                        TransferStatus::of_customer_refusal(&e),
                    ),
                    Err(e) => return Err(store(e)),
                };
                done.push(items::Done {
                    item_id: todo.item_id,
                    code,
                    status,
                });
            }
            items::record(
                self.db,
                &self.tenant,
                &self.job_id,
                items::CUSTOMER,
                &done,
                at,
            )
            .await?;
        }
    }

    /// The WeCom call that transfers the customers of one batch (one successor, at most
    /// 100), written with their requests.
    fn transfer_call(&self, appending: &[&Batched<CustomerCommand>]) -> Option<Call> {
        let mut customers = Vec::with_capacity(appending.len());
        let mut to = None;
        for b in appending {
            if let CustomerCommand::RequestHandover { to: successor, .. } = &b.command.command {
                to = Some(successor.clone());
                customers.push(local_id(&b.aggregate_id).to_string());
            }
        }
        let to = to?;
        let api = match self.kind {
            HandoverKind::Resigned => transfer::RESIGNED_CUSTOMERS,
            HandoverKind::OnJob => transfer::ON_JOB_CUSTOMERS,
        };
        let mut parts = vec![self.job_id.as_str(), to.as_str()];
        parts.extend(customers.iter().map(String::as_str));
        Some(Call {
            tenant: self.tenant.clone(),
            call_id: outbox::call_id(&parts),
            api: api.to_string(),
            subject: Some(self.job_id.clone()),
            request: transfer::customers_request(&self.from, &to, &customers),
        })
    }

    /// The request of one planned customer, keyed so a resumed job repeats it exactly.
    fn request(
        &self,
        todo: &items::Todo,
        at: DateTime<Utc>,
    ) -> Result<Batched<CustomerCommand>, HandoverJobError> {
        let customer = &todo.item_id;
        let handover = match todo.handover_id.as_deref().map(Uuid::parse_str) {
            Some(Ok(id)) => id,
            _ => handover_id(&self.tenant, &self.job_id, customer),
        };
        let command = CustomerCommand::RequestHandover {
            handover,
            from: self.from.clone(),
            to: StaffId::parse(todo.to_staff_id.as_str())?,
            kind: self.kind,
            from_departed_at: self.from_departed_at,
            // The plan gave this successor room; their limit is checked there.
            successor_at_limit: false,
        };
        Ok(Batched {
            aggregate_id: stream_id(&self.tenant, customer),
            command: Stamped::new(at, command),
            meta: self.keyed(format!("handover:{}:{customer}", self.job_id)),
        })
    }

    /// Moves the groups due today, batch by batch, until done or until the owner's 300
    /// transfers of the day are used up. Returns the day the next groups are due, if
    /// any are left.
    async fn move_groups(&self) -> Result<Option<NaiveDate>, HandoverJobError> {
        loop {
            let now = self.now();
            let today = local_day(now, self.tz);
            let batch = items::next_groups(self.db, &self.tenant, &self.job_id, today).await?;
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::new();
            let mut day_used_up = false;
            // One at a time: every claim appends to the same (original owner's) stream.
            for todo in batch {
                match self.move_group(&todo, now).await? {
                    Some(d) => done.push(d),
                    None => {
                        day_used_up = true;
                        break;
                    }
                }
            }
            items::record(
                self.db,
                &self.tenant,
                &self.job_id,
                items::GROUP,
                &done,
                now,
            )
            .await?;
            if day_used_up {
                let next = today.checked_add_days(Days::new(1)).unwrap_or(today);
                items::postpone_groups(self.db, &self.tenant, &self.job_id, today, next, now)
                    .await?;
                break;
            }
        }
        Ok(items::next_group_day(self.db, &self.tenant, &self.job_id).await?)
    }

    /// Claims one of today's transfers from the original owner, then moves the group.
    /// `None` when today's transfers are used up.
    async fn move_group(
        &self,
        todo: &items::Todo,
        at: DateTime<Utc>,
    ) -> Result<Option<items::Done>, HandoverJobError> {
        let group = GroupId::parse(todo.item_id.as_str())?;
        let to = StaffId::parse(todo.to_staff_id.as_str())?;
        let outcome =
            |code: &str, status: TransferStatus| -> Result<Option<items::Done>, HandoverJobError> {
                Ok(Some(items::Done {
                    item_id: todo.item_id.clone(),
                    code: code.to_string(),
                    status,
                }))
            };
        let claim = StaffCommand::ClaimGroupTransfer {
            group: group.clone(),
            time_zone: self.tz,
        };
        if self.wecom {
            return self.ask_wecom_to_move(todo, &group, &to, claim, at).await;
        }
        match self
            .engine
            .staff
            .execute(
                &stream_id(&self.tenant, self.from.as_str()),
                Stamped::new(at, claim),
                &self.keyed(format!("handover:{}:{group}:claim", self.job_id)),
            )
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(StaffError::DailyGroupTransferLimit(_))) => return Ok(None),
            Err(CommandError::Rejected(e)) => return outcome(e.code(), TransferStatus::NoRecord),
            Err(e) => return Err(store(e)),
        }
        let transfer = GroupCommand::TransferOwnership {
            to,
            // A departed owner leaves the group as it moves (DOMAIN.md); an on-job one
            // stays a member.
            previous_owner_leaves: self.kind == HandoverKind::Resigned,
        };
        match self
            .engine
            .groups
            .execute(
                &stream_id(&self.tenant, group.as_str()),
                Stamped::new(at, transfer),
                &self.keyed(format!("handover:{}:{group}:transfer", self.job_id)),
            )
            .await
        {
            Ok(_) => outcome(items::TRANSFERRED, TransferStatus::Accepted),
            Err(CommandError::Rejected(e)) => outcome(e.code(), TransferStatus::NoRecord),
            Err(e) => Err(store(e)),
        }
    }
}

impl Run<'_> {
    /// Claims one of today's transfers and, in the same transaction, writes the call
    /// that asks WeCom to move the group. The group's new owner is recorded from WeCom's
    /// answer, not here. `None` when today's transfers are used up.
    async fn ask_wecom_to_move(
        &self,
        todo: &items::Todo,
        group: &GroupId,
        to: &StaffId,
        claim: StaffCommand,
        at: DateTime<Utc>,
    ) -> Result<Option<items::Done>, HandoverJobError> {
        let api = match self.kind {
            HandoverKind::Resigned => transfer::RESIGNED_GROUPS,
            HandoverKind::OnJob => transfer::ON_JOB_GROUPS,
        };
        let call = Call {
            tenant: self.tenant.clone(),
            call_id: outbox::call_id(&[self.job_id.as_str(), group.as_str(), to.as_str()]),
            api: api.to_string(),
            subject: Some(self.job_id.clone()),
            request: transfer::groups_request(&[group.as_str()], to),
        };
        let claim = Batched {
            aggregate_id: stream_id(&self.tenant, self.from.as_str()),
            command: Stamped::new(at, claim),
            meta: self.keyed(format!("handover:{}:{group}:claim", self.job_id)),
        };
        let calls = |appending: &[&Batched<StaffCommand>]| -> Vec<Call> {
            appending.iter().map(|_| call.clone()).collect()
        };
        let answer = self
            .engine
            .staff
            .execute_many_calling(vec![claim], &calls)
            .await
            .pop()
            .expect("one answer per command");
        let (code, status) = match answer {
            Ok(_) => (items::SENT.to_string(), TransferStatus::Waiting),
            Err(CommandError::Rejected(StaffError::DailyGroupTransferLimit(_))) => return Ok(None),
            Err(CommandError::Rejected(e)) => (e.code().to_string(), TransferStatus::NoRecord),
            Err(e) => return Err(store(e)),
        };
        Ok(Some(items::Done {
            item_id: todo.item_id.clone(),
            code,
            status,
        }))
    }
}

/// Completes every waiting handover whose 24-hour window ended by `now` (WeCom's rule:
/// no answer is a yes), whoever requested it, in tenants that run without WeCom: where
/// WeCom acts, its own answer concludes the handover (`transfer_result`). Reads the due ones from the reassignment
/// view; each accept is idempotent, so one the view has not caught up with yet is a
/// harmless replay. Returns how many were accepted now.
pub async fn accept_due(engine: &Engine, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let due: Vec<(String, String, String)> = on_pool!(&engine.db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, customer_id, handover_id FROM rm_handover h \
             WHERE status = 'waiting' AND auto_accept_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM wecom_callback_config c \
               WHERE c.tenant_id = h.tenant_id AND c.corp_id IS NOT NULL \
               AND c.corp_secret IS NOT NULL) \
             ORDER BY auto_accept_at LIMIT $2",
        )
        .bind(now)
        .bind(ACCEPTS_PER_TICK)
        .fetch_all(pool)
        .await
    })?;
    let due = due
        .into_iter()
        .filter_map(|(tenant, customer, handover)| {
            let handover = Uuid::parse_str(&handover).ok()?;
            Some(Due {
                tenant,
                customer,
                key: format!("auto-accept:{handover}"),
                command: CustomerCommand::AcceptHandover {
                    handover,
                    trigger: AcceptTrigger::WindowElapsed,
                },
            })
        })
        .collect();
    // Answered in the meantime, or the view ran ahead of the clock.
    let settled = |refusal: &CustomerError| {
        matches!(
            refusal,
            CustomerError::NoSuchHandover | CustomerError::HandoverWindowOpen
        )
    };
    Ok(sweep::run(engine, "auto-accept", now, due, settled).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shanghai_day_starts_at_16_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(
            start_of(day, chrono_tz::Asia::Shanghai),
            Utc.with_ymd_and_hms(2026, 3, 1, 16, 0, 0).unwrap()
        );
    }

    #[test]
    fn the_handover_of_a_customer_is_the_same_on_every_run_of_its_job() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(handover_id(&t, "j1", "wm1"), handover_id(&t, "j1", "wm1"));
        assert_ne!(handover_id(&t, "j1", "wm1"), handover_id(&t, "j2", "wm1"));
        assert_ne!(handover_id(&t, "j1", "wm1"), handover_id(&t, "j1", "wm2"));
    }

    #[test]
    fn the_job_input_is_stored_in_snake_case() {
        let input = HandoverJobInput {
            from: "a".into(),
            successors: vec!["b".into()],
            strategy: StrategyInput::Balanced,
            kind: KindInput::OnJob,
            customers: None,
        };
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["strategy"], "balanced");
        assert_eq!(json["kind"], "on_job");
    }
}

/// The `jobs.kind` of a handover.
pub const KIND: &str = "handover";

/// Handovers as a kind of job the runner runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HandoverJobs;

#[async_trait::async_trait]
impl JobKind for HandoverJobs {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), String> {
        run(jobs, tenant, job)
            .await
            .map_err(|e| format!("{} {e}", e.code()))
    }
}

/// The handovers' work on every tick: outcomes into the job rows and, when
/// `auto_accept` is on, completing requests whose 24-hour window passed unanswered.
#[derive(Debug, Clone, Copy)]
pub struct HandoverTick {
    pub auto_accept: bool,
}

#[async_trait::async_trait]
impl Periodic for HandoverTick {
    async fn tick(&self, jobs: &Jobs) {
        // One server at a time: every server ticks, and each would otherwise read the
        // same due handovers and replay the others' accepts.
        match try_lease(jobs.db(), "scrm-handover-tick").await {
            Ok(Some(lease)) => {
                if self.auto_accept {
                    match accept_due(jobs.engine(), jobs.clock().now()).await {
                        Ok(0) => {}
                        Ok(accepted) => tracing::info!(accepted, "handovers accepted after 24 h"),
                        Err(error) => tracing::error!(%error, "auto-accept failed"),
                    }
                }
                if let Err(error) = sync_outcomes(jobs.db(), jobs.clock().now()).await {
                    tracing::error!(%error, "could not update handover outcomes");
                }
                lease.release().await;
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not take the handover tick's lease"),
        }
    }
}
