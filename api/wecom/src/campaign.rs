//! A campaign's job as the server runs it (docs/adr/0019-campaigns.md): the engine plans
//! it and writes its calls ([`engine::campaign`]); the outbound runner sends them
//! ([`crate::outbound`]); this job reads what WeCom says became of each customer and
//! records it: a delivery in the customer's stream, or the reason it did not happen.
//!
//! A mass message's customers are reached when their guide confirms the task in the
//! app, which may be hours later: the job polls `get_groupmsg_send_result` until every
//! customer has an outcome or the guides' window closes. A Moment is reached when the
//! guide publishes the post: `get_moment_task_result` names the post, and
//! `get_moment_customer_list` lists whom it reached.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use domain::values::StaffId;
use engine::campaign::items::{self, OpenCall, Outcome};
use engine::campaign::{self, Campaign, CampaignError, Stage};
use engine::handover::items::{succeed, wait};
use engine::jobs::{JobKind, Jobs};
use engine::reads::JobRecord;
use futures::StreamExt;

use crate::client::{
    mass_message::SendStatus, moment::MomentTask, ClientError, TenantApi, WecomApi,
};
use crate::inbox;

/// Results read per page (WeCom's largest).
const PAGE: usize = 1_000;
/// Calls whose results are read and delivered at once.
const CALLS_AT_ONCE: usize = 4;
/// Pages read per call and poll: 10,000 customers a task at most.
const PAGES: usize = 20;

/// Why a campaign's poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Campaign(#[from] CampaignError),
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the WeCom settings could not be read: {0}")]
    Inbox(#[from] inbox::InboxError),
    #[error("the tenant has no WeCom API")]
    NotConfigured,
}

impl PollError {
    fn code(&self) -> &'static str {
        match self {
            Self::Campaign(e) => e.code(),
            Self::Store(_) | Self::Inbox(_) => "STORE",
            Self::NotConfigured => "NOT_CONFIGURED",
        }
    }
}

/// The campaign job kind, registered where the server is put together.
#[derive(Debug, Clone)]
pub struct CampaignJobs {
    pub api: WecomApi,
    /// How often WeCom is asked what became of a campaign's customers.
    pub poll_every: Duration,
}

#[async_trait::async_trait]
impl JobKind for CampaignJobs {
    fn kind(&self) -> &'static str {
        campaign::KIND
    }

    async fn run(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), String> {
        self.step(jobs, tenant, job)
            .await
            .map_err(|e| format!("{} {e}", e.code()))
    }
}

impl CampaignJobs {
    /// Prepares the campaign as far as it goes, reads WeCom's results for every call
    /// it answered, then ends the job or waits for the next poll.
    async fn step(&self, jobs: &Jobs, tenant: &str, job: &JobRecord) -> Result<(), PollError> {
        let campaign = Campaign::load(jobs, tenant, job).await?;
        let db = jobs.db();
        let (tenant, job_id) = (&campaign.tenant, campaign.job_id.as_str());
        if let Stage::Waiting(until) = campaign.prepare().await? {
            wait(db, tenant, job_id, until).await?;
            return Ok(());
        }
        let credentials = inbox::config(db, tenant)
            .await?
            .and_then(|c| c.api)
            .ok_or(PollError::NotConfigured)?;
        let wecom = self.api.for_tenant(tenant.as_str(), &credentials);
        let started = std::time::Instant::now();
        let open = items::open_calls(db, tenant, job_id).await?;
        let calls = open.len();
        // Calls hold distinct customers, so their results are recorded side by side:
        // one at a time, each call's round trips would leave both database and CPU idle.
        // The futures are made before they are streamed: a stream's mapping closure over
        // borrowed values makes the job's future fail to be provably `Send`.
        let polls: Vec<_> = open
            .into_iter()
            .map(|call| poll_call(&campaign, &wecom, call))
            .collect();
        let mut polls = futures::stream::iter(polls).buffer_unordered(CALLS_AT_ONCE);
        while polls.next().await.is_some() {}
        drop(polls);
        tracing::info!(
            job = job_id,
            calls,
            seconds = started.elapsed().as_secs_f64(),
            "campaign results read"
        );
        let now = jobs.clock().now();
        if items::open_count(db, tenant, job_id).await? > 0 {
            let state = items::open(db, tenant, job_id, campaign.input.kind, now).await?;
            if now < state.send_at + campaign::confirm_window() {
                items::refresh(db, tenant, job_id).await?;
                wait(db, tenant, job_id, now + self.poll_every).await?;
                return Ok(());
            }
            items::move_all(
                db,
                tenant,
                job_id,
                None,
                items::SENT,
                items::UNCONFIRMED,
                now,
            )
            .await?;
        }
        items::refresh(db, tenant, job_id).await?;
        succeed(db, tenant, job_id, now).await?;
        Ok(())
    }
}

/// Reads one call's results and records its customers' outcomes, or moves its
/// customers to `CALL_FAILED` when WeCom refused the call for good. A WeCom that is
/// busy or unreachable leaves the call for the next poll.
///
/// Each call records its own outcomes: gathering several calls' outcomes into one
/// statement measured slower (2,000 rows joined to `unnest` per statement, the other
/// calls waiting meanwhile: BENCHMARKS.md).
async fn poll_call(campaign: &Campaign<'_>, wecom: &TenantApi<'_>, call: OpenCall) {
    let db = campaign.jobs.db();
    let (tenant, job_id) = (&campaign.tenant, campaign.job_id.as_str());
    let polled = match (call.status.as_str(), call.api.as_str()) {
        ("failed", _) => {
            let now = campaign.jobs.clock().now();
            let id = Some(call.call_id.as_str());
            items::move_all(
                db,
                tenant,
                job_id,
                id,
                items::PLANNED,
                items::CALL_FAILED,
                now,
            )
            .await
            .map(|_| Vec::new())
            .map_err(CallError::from)
        }
        ("done", campaign::ADD_MSG_TEMPLATE) => mass_message(campaign, wecom, &call).await,
        ("done", campaign::ADD_MOMENT_TASK) => moment(campaign, wecom, &call).await,
        _ => Ok(Vec::new()),
    };
    let recorded = match polled {
        Ok(outcomes) => {
            let now = campaign.jobs.clock().now();
            items::record(db, tenant, job_id, &outcomes, now)
                .await
                .map_err(CallError::from)
        }
        Err(e) => Err(e),
    };
    if let Err(error) = recorded {
        // WeCom busy or unreachable: the next poll asks again.
        tracing::warn!(job = job_id, call = %call.call_id, %error, "campaign results not read");
    }
}

/// Why reading one call's results stopped: WeCom, or our own store.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Wecom(#[from] ClientError),
    #[error("{0}")]
    Campaign(#[from] CampaignError),
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
}

fn unix(seconds: i64, otherwise: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0)
        .filter(|_| seconds > 0)
        .unwrap_or(otherwise)
}

/// Reads a mass message task's results: each of our customers sent, not sent (not a
/// friend, already received one today) or still unsent. A customer WeCom does not list
/// at all was not in the task it created (not the guide's friend). Returns the outcomes
/// to record, deliveries already in the log.
async fn mass_message(
    campaign: &Campaign<'_>,
    wecom: &TenantApi<'_>,
    call: &OpenCall,
) -> Result<Vec<Outcome>, CallError> {
    let db = campaign.jobs.db();
    let (tenant, job_id) = (&campaign.tenant, campaign.job_id.as_str());
    let Some(msgid) = call.answer.as_ref().and_then(|a| a["msgid"].as_str()) else {
        return Ok(Vec::new());
    };
    let sender = call.request["sender"].as_str().unwrap_or_default();
    let sent: HashSet<String> = items::customers_in(db, tenant, job_id, &call.call_id, items::SENT)
        .await?
        .into_iter()
        .collect();
    if sent.is_empty() {
        return Ok(Vec::new());
    }
    let now = campaign.jobs.clock().now();
    let (mut reached, mut outcomes, mut listed) = (Vec::new(), Vec::new(), HashSet::new());
    let mut cursor: Option<String> = None;
    let mut complete = false;
    for _ in 0..PAGES {
        let page = wecom
            .groupmsg_send_result(msgid, sender, cursor.as_deref(), PAGE)
            .await?;
        for r in page.results {
            if !sent.contains(&r.external_userid) {
                continue;
            }
            listed.insert(r.external_userid.clone());
            let outcome = match r.status {
                SendStatus::Unsent => continue,
                SendStatus::Sent => {
                    reached.push((r.external_userid, unix(r.send_time, now)));
                    continue;
                }
                SendStatus::NotFriend => items::NOT_FRIEND,
                SendStatus::AlreadyReceived => items::ALREADY_RECEIVED,
            };
            outcomes.push(Outcome {
                customer: r.external_userid,
                outcome: outcome.to_string(),
                delivered_at: None,
            });
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                complete = true;
                break;
            }
        }
    }
    if complete {
        outcomes.extend(
            sent.iter()
                .filter(|c| !listed.contains(*c))
                .map(|c| Outcome {
                    customer: c.clone(),
                    outcome: items::NOT_FRIEND.to_string(),
                    delivered_at: None,
                }),
        );
    }
    if let Ok(sender) = StaffId::parse(sender) {
        outcomes.extend(campaign.deliver(&sender, &reached).await?);
    }
    Ok(outcomes)
}

/// Reads a Moment task: once WeCom made the post, the customers the guide's published
/// post reached are delivered (and returned to record); a guide WeCom could not give it
/// to reaches nobody.
async fn moment(
    campaign: &Campaign<'_>,
    wecom: &TenantApi<'_>,
    call: &OpenCall,
) -> Result<Vec<Outcome>, CallError> {
    let db = campaign.jobs.db();
    let (tenant, job_id) = (&campaign.tenant, campaign.job_id.as_str());
    let Some(jobid) = call.answer.as_ref().and_then(|a| a["jobid"].as_str()) else {
        return Ok(Vec::new());
    };
    let sender = call.request["visible_range"]["sender_list"]["user_list"][0]
        .as_str()
        .unwrap_or_default();
    let now = campaign.jobs.clock().now();
    let id = Some(call.call_id.as_str());
    let moment_id = match wecom.moment_task_result(jobid).await? {
        MomentTask::Running => return Ok(Vec::new()),
        MomentTask::Failed { errcode, .. } => {
            let code = format!("WECOM_{errcode}");
            items::move_all(db, tenant, job_id, id, items::SENT, &code, now).await?;
            return Ok(Vec::new());
        }
        MomentTask::Done {
            invalid_senders, ..
        } if invalid_senders.iter().any(|s| s == sender) => {
            items::move_all(db, tenant, job_id, id, items::SENT, INVALID_SENDER, now).await?;
            return Ok(Vec::new());
        }
        MomentTask::Done { moment_id, .. } => moment_id,
    };
    let sent: HashSet<String> = items::customers_in(db, tenant, job_id, &call.call_id, items::SENT)
        .await?
        .into_iter()
        .collect();
    let mut reached = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = wecom
            .moment_customers(&moment_id, sender, cursor.as_deref(), PAGE)
            .await?;
        reached.extend(
            page.customers
                .into_iter()
                .filter(|c| sent.contains(c))
                .map(|c| (c, now)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    match StaffId::parse(sender) {
        Ok(sender) => Ok(campaign.deliver(&sender, &reached).await?),
        Err(_) => Ok(Vec::new()),
    }
}

/// WeCom could not give the guide the post (they left, or are outside the app's range).
const INVALID_SENDER: &str = "INVALID_SENDER";
