//! Campaigns as durable jobs (docs/adr/0019-campaigns.md): a mass message (群发) or an
//! enterprise Moment (朋友圈) to an audience chosen with the customer list's filters.
//!
//! A campaign's job waits for its send time, then plans its audience page by page
//! ([`domain::campaign_plan`], on the guides and recent campaigns each customer has),
//! writing one row per customer ([`items`]): sent by a guide, held out, or skipped with
//! the reason. It then groups the planned customers into WeCom's calls (one guide's
//! task of at most 10,000 customers, one post per guide) and writes each to the outbox
//! together with its customers' rows, so the outbound runner sends it with its retries
//! and never twice. WeCom's answers and results, read by the WeCom crate's part of the
//! job, move each customer to its outcome and append the deliveries to the log.

pub mod items;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use domain::campaign_plan::{self, CampaignKind, Recipient, Settings};
use domain::customer::CustomerCommand;
use domain::stamp::{stream_id, Stamped};
use domain::values::{MessageId, StaffId, StoreId, TenantId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::commands::{Actor, Batched, CommandError, CommandMeta};
use crate::jobs::Jobs;
use crate::outbox::{self, Call};
use crate::reads::{CustomerFilter, JobRecord, ReadError, Reads, Scope};

pub const KIND: &str = "campaign";
/// The APIs a campaign's calls use, after `/cgi-bin/`.
pub const ADD_MSG_TEMPLATE: &str = "externalcontact/add_msg_template";
pub const ADD_MOMENT_TASK: &str = "externalcontact/add_moment_task";

/// Customers of the audience planned per page: memory stays flat whatever its size.
const PAGE: i64 = 5_000;
/// Guides whose calls are written per transaction: a round trip per call, not per
/// customer, is what grouping costs, and a page holds a few guides' customers.
const GUIDES_PER_WRITE: i64 = 50;
/// Held-out customers read per page, and their batches written at once.
const HELD_OUT_PER_PAGE: i64 = 1_000;
const BATCHES_AT_ONCE: usize = 4;
/// How far back other campaigns' sends are looked up for the one-a-day rule: a day in
/// any time zone, and then some.
const REACHED_LOOKBACK_HOURS: i64 = 48;

/// How long guides have to confirm a campaign in the app: after that its customers
/// still unsent are reported `UNCONFIRMED` and the job ends.
pub fn confirm_window() -> Duration {
    Duration::days(3)
}

/// What a campaign sends, as the job stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindInput {
    MassMessage,
    Moment,
}

impl KindInput {
    pub fn domain(self) -> CampaignKind {
        match self {
            Self::MassMessage => CampaignKind::MassMessage,
            Self::Moment => CampaignKind::Moment,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MassMessage => "mass_message",
            Self::Moment => "moment",
        }
    }
}

/// A campaign job's input (the `jobs.input` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInput {
    /// What operations call it: the name a guide reads in a customer's timeline.
    /// Campaigns started before it had a name have none, and are shown by their id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: KindInput,
    pub text: String,
    /// WeCom-shaped attachments (image, link, mini-program card), sent as given.
    #[serde(default)]
    pub attachments: Vec<Value>,
    /// The coupon campaign whose redemptions measure what the campaign brought back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_campaign: Option<String>,
    pub filter: CustomerFilter,
    /// A store manager's audience: their stores' customers. None: the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stores: Option<Vec<String>>,
    pub send_at: DateTime<Utc>,
    /// Share of the eligible audience held out, in thousandths.
    #[serde(default)]
    pub holdout_per_mille: u16,
}

/// Why a campaign's job stopped. A customer not sent is not an error: it is that
/// customer's outcome.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("the job's input cannot be read: {0}")]
    BadInput(#[from] serde_json::Error),
    #[error("the job's input cannot be read: {0}")]
    BadId(#[from] domain::values::ParseError),
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the audience could not be read: {0}")]
    Read(#[from] ReadError),
    #[error("the read models could not catch up: {0}")]
    Projections(#[from] projections::ProjectionError),
    #[error("a delivery could not be recorded: {0}")]
    Command(String),
}

impl CampaignError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) | Self::BadId(_) => "BAD_INPUT",
            Self::Store(_) | Self::Read(_) => "STORE",
            Self::Projections(_) => "PROJECTIONS",
            Self::Command(_) => "COMMAND",
        }
    }
}

/// Where a campaign's job stands after [`Campaign::prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing to do before this instant (the send time, or another campaign of the
    /// tenant is planning).
    Waiting(DateTime<Utc>),
    /// Planned and in calls: WeCom's answers and results are what is left.
    Sending,
}

/// One job's campaign, resolved once per run.
#[derive(Debug)]
pub struct Campaign<'a> {
    pub jobs: &'a Jobs,
    pub tenant: TenantId,
    pub job_id: String,
    pub input: CampaignInput,
    pub tz: Tz,
}

/// One campaign plans at a time in a process (the database lock below covers
/// processes on PostgreSQL): two campaigns planned at once would not see each other's
/// customers, and a customer could be sent both on one day.
static PLANNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl<'a> Campaign<'a> {
    pub async fn load(
        jobs: &'a Jobs,
        tenant: &str,
        job: &JobRecord,
    ) -> Result<Self, CampaignError> {
        let tenant = TenantId::parse(tenant)?;
        Ok(Self {
            tz: crate::tenants::time_zone(jobs.db(), &tenant).await?,
            input: serde_json::from_str(&job.input)?,
            job_id: job.job_id.clone(),
            jobs,
            tenant,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.jobs.clock().now()
    }

    /// The message id deliveries carry: the campaign's job.
    pub fn message(&self) -> Result<MessageId, CampaignError> {
        Ok(MessageId::parse(self.job_id.as_str())?)
    }

    /// Waits for the send time, plans the audience and groups it into calls, each step
    /// once: a resumed job goes on from what is stored.
    pub async fn prepare(&self) -> Result<Stage, CampaignError> {
        let db = self.jobs.db();
        let now = self.now();
        if now < self.input.send_at {
            return Ok(Stage::Waiting(self.input.send_at));
        }
        let state = items::open(db, &self.tenant, &self.job_id, self.input.kind, now).await?;
        if state.planned_at.is_none() {
            let _in_process = PLANNING.lock().await;
            let lease = format!("scrm-campaign-plan:{}", self.tenant);
            let Some(lease) = crate::lease::try_lease(db, &lease).await? else {
                return Ok(Stage::Waiting(now + Duration::seconds(2)));
            };
            let started = std::time::Instant::now();
            let planned = self.plan(state.send_at).await;
            tracing::info!(job = %self.job_id, seconds = started.elapsed().as_secs_f64(), "campaign planned");
            lease.release().await;
            planned?;
        }
        if state.called_at.is_none() {
            let started = std::time::Instant::now();
            self.group_calls().await?;
            tracing::info!(job = %self.job_id, seconds = started.elapsed().as_secs_f64(), "campaign in calls");
        }
        if state.held_at.is_none() {
            let started = std::time::Instant::now();
            self.hold_out(state.send_at).await?;
            tracing::info!(job = %self.job_id, seconds = started.elapsed().as_secs_f64(), "campaign holdout recorded");
        }
        items::refresh(db, &self.tenant, &self.job_id).await?;
        Ok(Stage::Sending)
    }

    /// Plans the audience page by page in customer order; a page's rows are written in
    /// one statement, so a resumed plan starts after the last customer written.
    async fn plan(&self, send_at: DateTime<Utc>) -> Result<(), CampaignError> {
        let db = self.jobs.db();
        projections::projector::catch_up(db).await?;
        let scope = match &self.input.stores {
            None => Scope::Tenant,
            Some(stores) => Scope::Stores(
                stores
                    .iter()
                    .map(|s| StoreId::parse(s.as_str()))
                    .collect::<Result<_, _>>()?,
            ),
        };
        let senders: BTreeSet<StaffId> = self
            .input
            .filter
            .served_by
            .iter()
            .map(|s| StaffId::parse(s.as_str()))
            .collect::<Result<_, _>>()?;
        let settings = Settings {
            kind: self.input.kind.domain(),
            message: self.message()?,
            send_at,
            time_zone: self.tz,
            holdout_per_mille: self.input.holdout_per_mille,
            senders,
        };
        let mut after = items::last_planned(db, &self.tenant, &self.job_id).await?;
        loop {
            let ids = Reads::new(db, &self.tenant)
                .customer_ids(&scope, &self.input.filter, send_at, after.as_deref(), PAGE)
                .await?;
            let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
                break;
            };
            let mut guides = items::guides(db, &self.tenant, first, last).await?;
            let since = send_at - Duration::hours(REACHED_LOOKBACK_HOURS);
            let mut reached = items::reached(
                db,
                &self.tenant,
                &self.job_id,
                self.input.kind,
                (first, last),
                since,
            )
            .await?;
            let audience: Vec<Recipient> = ids
                .iter()
                .filter_map(|id| {
                    Some(Recipient {
                        customer: domain::values::ExternalUserId::parse(id.as_str()).ok()?,
                        guides: guides.remove(id).unwrap_or_default(),
                        reached: reached.remove(id).unwrap_or_default(),
                    })
                })
                .collect();
            let plan = campaign_plan::plan(&settings, &audience);
            let rows = items::from_plan(&plan);
            items::insert(
                db,
                &self.tenant,
                &self.job_id,
                self.input.kind,
                send_at,
                &rows,
            )
            .await?;
            if (ids.len() as i64) < PAGE {
                break;
            }
            after = Some(last.clone());
        }
        items::analyze(db).await?;
        items::mark_planned(db, &self.tenant, &self.job_id, self.now()).await?;
        Ok(())
    }

    /// Groups the planned customers into WeCom's calls, a page of guides at a time in
    /// guide order; a page's calls are written to the outbox with their customers'
    /// rows in one transaction, so a resumed job goes on with the next guide.
    async fn group_calls(&self) -> Result<(), CampaignError> {
        let db = self.jobs.db();
        let per_call = campaign_plan::customers_per_call(self.input.kind.domain());
        let mut after = String::new();
        loop {
            let senders =
                items::unassigned_senders(db, &self.tenant, &self.job_id, &after, GUIDES_PER_WRITE)
                    .await?;
            let Some(last) = senders.last() else {
                break;
            };
            let rows =
                items::unassigned_between(db, &self.tenant, &self.job_id, (&after, last)).await?;
            let assignments: Vec<items::Assignment> = calls_of(rows, per_call)
                .into_iter()
                .map(|(sender, customers)| items::Assignment {
                    call: self.call(&sender, &customers),
                    first: customers[0].clone(),
                    last: customers[customers.len() - 1].clone(),
                    sender,
                })
                .collect();
            items::assign(db, &self.tenant, &self.job_id, &assignments, self.now()).await?;
            after.clone_from(last);
        }
        items::analyze(db).await?;
        items::mark_called(db, &self.tenant, &self.job_id, self.now()).await?;
        Ok(())
    }

    /// Records in each held-out customer's stream that they were kept back at
    /// `send_at`, so what the campaign brought back is measured from the log alone.
    /// Keyed per campaign and customer: a resumed job records nobody twice.
    async fn hold_out(&self, send_at: DateTime<Utc>) -> Result<(), CampaignError> {
        let db = self.jobs.db();
        let engine = self.jobs.engine();
        let campaign = self.message()?;
        let mut after = String::new();
        loop {
            let page =
                items::held_out_after(db, &self.tenant, &self.job_id, &after, HELD_OUT_PER_PAGE)
                    .await?;
            let Some(last) = page.last() else {
                break;
            };
            let batches: Vec<Vec<Batched<CustomerCommand>>> = page
                .chunks(domain::rules::WECOM_BATCH_SIZE)
                .map(|batch| {
                    batch
                        .iter()
                        .map(|customer| {
                            let key = format!("campaign-holdout:{}:{customer}", self.job_id);
                            Batched {
                                aggregate_id: stream_id(&self.tenant, customer),
                                command: Stamped::new(
                                    send_at,
                                    CustomerCommand::HoldOutOfCampaign {
                                        campaign: campaign.clone(),
                                    },
                                ),
                                meta: CommandMeta::new(
                                    self.tenant.clone(),
                                    Actor::system(&self.job_id),
                                    Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
                                )
                                .with_idempotency_key(key),
                            }
                        })
                        .collect()
                })
                .collect();
            // Distinct customers in each batch: a few are written at once. The futures
            // are made before they are streamed: a stream's mapping closure over borrowed
            // values is not provably `Send`.
            let writes: Vec<_> = batches
                .into_iter()
                .map(|commands| engine.customers.execute_many(commands))
                .collect();
            let answers: Vec<_> = futures::stream::iter(writes)
                .buffer_unordered(BATCHES_AT_ONCE)
                .collect()
                .await;
            for answer in answers.into_iter().flatten() {
                if let Err(e) = answer {
                    return Err(CampaignError::Command(e.to_string()));
                }
            }
            after = last.clone();
        }
        items::mark_held(db, &self.tenant, &self.job_id, self.now()).await?;
        Ok(())
    }

    /// The WeCom call sending the campaign to `customers` from `sender`.
    fn call(&self, sender: &str, customers: &[String]) -> Call {
        let first = customers.first().map_or("", String::as_str);
        let (api, request) = match self.input.kind {
            KindInput::MassMessage => (
                ADD_MSG_TEMPLATE,
                json!({
                    "chat_type": "single",
                    "sender": sender,
                    "external_userid": customers,
                    "text": { "content": self.input.text },
                    "attachments": self.input.attachments,
                }),
            ),
            // A post is given to the guide, who publishes it to their customers: WeCom
            // takes no customer list, the audience is who the guide's post reaches.
            KindInput::Moment => (
                ADD_MOMENT_TASK,
                json!({
                    "text": { "content": self.input.text },
                    "attachments": self.input.attachments,
                    "visible_range": { "sender_list": { "user_list": [sender] } },
                }),
            ),
        };
        Call {
            tenant: self.tenant.clone(),
            call_id: outbox::call_id(&["campaign", &self.job_id, sender, first]),
            api: api.to_string(),
            subject: Some(self.job_id.clone()),
            request,
        }
    }

    /// Records what reached `customers` from `sender` (with WeCom's time for each) in
    /// their streams, in WeCom-sized batches. Each delivery is keyed by campaign and
    /// customer, so results read twice record nothing twice. Returns each customer's
    /// outcome: `DELIVERED`, or the rule that refused it.
    pub async fn deliver(
        &self,
        sender: &StaffId,
        reached: &[(String, DateTime<Utc>)],
    ) -> Result<Vec<items::Outcome>, CampaignError> {
        let engine = self.jobs.engine();
        let message = self.message()?;
        let mut outcomes = Vec::with_capacity(reached.len());
        for chunk in reached.chunks(domain::rules::WECOM_BATCH_SIZE) {
            let commands: Vec<Batched<CustomerCommand>> = chunk
                .iter()
                .map(|(customer, at)| {
                    let command = match self.input.kind {
                        KindInput::MassMessage => CustomerCommand::DeliverMassMessage {
                            message: message.clone(),
                            sender: sender.clone(),
                            time_zone: self.tz,
                        },
                        KindInput::Moment => CustomerCommand::DeliverMoment {
                            moment: message.clone(),
                            sender: sender.clone(),
                            time_zone: self.tz,
                        },
                    };
                    let key = format!("campaign:{}:{customer}", self.job_id);
                    Batched {
                        aggregate_id: stream_id(&self.tenant, customer),
                        command: Stamped::new(*at, command),
                        meta: CommandMeta::new(
                            self.tenant.clone(),
                            Actor::integration("wecom"),
                            Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
                        )
                        .with_idempotency_key(key),
                    }
                })
                .collect();
            for ((customer, at), answer) in chunk
                .iter()
                .zip(engine.customers.execute_many(commands).await)
            {
                let (outcome, delivered_at) = match answer {
                    Ok(_) => (items::DELIVERED.to_string(), Some(*at)),
                    Err(CommandError::Rejected(e)) => (e.code().to_string(), None),
                    Err(e) => return Err(CampaignError::Command(e.to_string())),
                };
                outcomes.push(items::Outcome {
                    customer: customer.clone(),
                    outcome,
                    delivered_at,
                });
            }
        }
        Ok(outcomes)
    }
}

/// Splits `(guide, customer)` rows, in guide then customer order, into calls: each
/// guide's customers in runs of at most `per_call`.
fn calls_of(rows: Vec<(String, String)>, per_call: usize) -> Vec<(String, Vec<String>)> {
    let mut calls: Vec<(String, Vec<String>)> = Vec::new();
    for (sender, customer) in rows {
        match calls.last_mut() {
            Some((s, customers)) if *s == sender && customers.len() < per_call => {
                customers.push(customer);
            }
            _ => calls.push((sender, vec![customer])),
        }
    }
    calls
}

/// Each customer's guides still in the company, with when each relation began, from
/// `(customer, staff, since)` rows.
fn guides_by_customer(
    rows: Vec<(String, String, DateTime<Utc>)>,
) -> HashMap<String, Vec<(StaffId, DateTime<Utc>)>> {
    let mut out: HashMap<String, Vec<(StaffId, DateTime<Utc>)>> = HashMap::new();
    for (customer, staff, since) in rows {
        if let Ok(staff) = StaffId::parse(staff) {
            out.entry(customer).or_default().push((staff, since));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::calls_of;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(s, c)| (s.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn each_guide_gets_their_own_calls_of_at_most_the_limit() {
        let given = rows(&[
            ("a", "c1"),
            ("a", "c2"),
            ("a", "c3"),
            ("b", "c4"),
            ("c", "c5"),
            ("c", "c6"),
        ]);
        let calls = calls_of(given, 2);
        let shape: Vec<(&str, Vec<&str>)> = calls
            .iter()
            .map(|(s, cs)| (s.as_str(), cs.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a", vec!["c1", "c2"]),
                ("a", vec!["c3"]),
                ("b", vec!["c4"]),
                ("c", vec!["c5", "c6"]),
            ]
        );
    }

    #[test]
    fn no_rows_make_no_calls() {
        assert!(calls_of(Vec::new(), 10).is_empty());
    }
}
