//! The one outbound path: the calls the log asks WeCom to make, sent, retried and
//! answered (docs/adr/0013-wecom-outbox.md).
//!
//! [`send_due`] takes due rows of `wecom_outbox` (written with the events that ask for
//! them, see `engine::outbox`), marks each `sending` before it goes out, sends it, and
//! appends what WeCom's answer says: a customer WeCom would not transfer is refused with
//! its `errcode`, a group it moved gets its new owner. A call found `sending` was sent by
//! an attempt whose answer was lost (a crash, a timeout): WeCom is asked what it holds
//! first, and only what it does not know is sent again, so no customer or group is
//! transferred twice. [`poll_results`] reads `transfer_result` for every pair of guides
//! with handovers waiting and concludes them on WeCom's word.
//!
//! A guide's tag or remark edit is written back the same way (`mark_tag`, `remark`); a
//! refused one is taken back in the log (`writes`).
//!
//! - `answers`: WeCom's answers read without I/O.
//! - `claimed`: calls their writer sends at once (welcome messages, channel codes).
//! - `writes`: edits written back, taken back when refused, safe from their own echo.

pub mod answers;
pub mod claimed;
pub mod writes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use domain::customer::{AcceptTrigger, CustomerCommand, CustomerError};
use domain::group::GroupCommand;
use domain::handover_plan::TransferStatus;
use domain::stamp::{stream_id, Stamped};
use domain::values::TenantId;
use engine::app::Engine;
use engine::campaign;
use engine::channel_codes;
use engine::commands::{Actor, CommandError, CommandMeta};
use engine::handover::{handover_id, items, transfer};
use engine::outbox::{self, CallStatus, DueCall};
use engine::sweep::{self, Due};
use engine::wecom_writes;
use engine::welcome;
use futures::StreamExt;
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{ClientError, TenantApi, WecomApi};
use crate::inbox;
use answers::{Concluded, TRY_AGAIN};

/// Calls taken per round, and rounds per tick.
const CALLS_PER_TICK: i64 = 200;
const ROUNDS_PER_TICK: usize = 10;
/// Calls of a round in flight at once.
const CALLS_AT_ONCE: usize = 4;
/// Pages of `transfer_result` read per pair and poll: 100 customers a page at most.
const RESULT_PAGES: usize = 500;
/// Pairs of guides polled per tick.
const PAIRS_PER_TICK: i64 = 1_000;

/// When each pair of guides (tenant, from, to) had its transfer results read last.
/// In memory: after a restart every pair is read once more, which is harmless.
pub type LastPolled = HashMap<(String, String, String), DateTime<Utc>>;

/// Why a round of outbound work stopped. A call WeCom refuses is not an error: its
/// answer is recorded.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the WeCom settings could not be read: {0}")]
    Inbox(#[from] inbox::InboxError),
    #[error("a command failed: {0}")]
    Command(String),
}

fn command<E: std::error::Error>(e: CommandError<E>) -> OutboundError {
    OutboundError::Command(e.to_string())
}

/// How patient the outbound path is.
#[derive(Debug, Clone, Copy)]
pub struct OutboundSettings {
    /// Attempts a call gets before it is marked failed.
    pub max_attempts: i64,
    /// How often one pair of guides' transfer results are read.
    pub poll_every: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            poll_every: Duration::minutes(5),
        }
    }
}

/// The wait after a call's `attempts`-th try WeCom did not carry out: 30 s, doubling,
/// at most an hour. Pure.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(1, 12) - 1).unwrap_or(0);
    Duration::seconds((30_i64 << doublings).min(3_600))
}

/// Sends the due calls, round after round while WeCom answers. Returns how many were
/// answered.
pub async fn send_due(
    engine: &Engine,
    api: &WecomApi,
    settings: &OutboundSettings,
    now: DateTime<Utc>,
) -> Result<usize, OutboundError> {
    let mut answered = 0;
    // In rounds: a customer's later edit becomes due once its earlier one is answered.
    for _ in 0..ROUNDS_PER_TICK {
        let due = outbox::due(&engine.db, now, CALLS_PER_TICK).await?;
        // A round's calls are independent (a customer's edits wait for the round after),
        // so a few are in flight at once: one at a time, each waited on WeCom and the
        // store in turn. Every call of the round ends before an error is reported.
        // Made before streamed: see `crate::campaign`'s poll.
        let sends: Vec<_> = due
            .iter()
            .map(|call| send_one(engine, api, settings, call, now))
            .collect();
        let sent: Vec<Result<bool, OutboundError>> = futures::stream::iter(sends)
            .buffer_unordered(CALLS_AT_ONCE)
            .collect()
            .await;
        let mut round = 0;
        for answered in sent {
            round += usize::from(answered?);
        }
        answered += round;
        if round == 0 {
            break;
        }
    }
    Ok(answered)
}

pub(crate) async fn send_one(
    engine: &Engine,
    api: &WecomApi,
    settings: &OutboundSettings,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<bool, OutboundError> {
    let db = &engine.db;
    let Ok(tenant) = TenantId::parse(call.tenant.as_str()) else {
        outbox::fail(db, call, "BAD_TENANT", now).await?;
        return Ok(false);
    };
    let Some(credentials) = inbox::config(db, &tenant).await?.and_then(|c| c.api) else {
        outbox::fail(db, call, "NOT_CONFIGURED the tenant has no WeCom API", now).await?;
        return Ok(false);
    };
    let wecom = api.for_tenant(tenant.as_str(), &credentials);
    let sent = match call.api.as_str() {
        transfer::RESIGNED_CUSTOMERS | transfer::ON_JOB_CUSTOMERS => {
            send_customers(&wecom, db, call, now).await?
        }
        transfer::RESIGNED_GROUPS | transfer::ON_JOB_GROUPS => {
            send_groups(&wecom, db, call, now).await?
        }
        wecom_writes::MARK_TAG | wecom_writes::REMARK => send_as_is(&wecom, db, call, now).await?,
        campaign::ADD_MSG_TEMPLATE => send_mass_message(&wecom, db, call, now).await?,
        campaign::ADD_MOMENT_TASK => send_moment(db, &wecom, call, now).await?,
        welcome::SEND_WELCOME => claimed::send_welcome(&wecom, db, call, now).await?,
        channel_codes::ADD_CONTACT_WAY => claimed::send_contact_way(&wecom, db, call, now).await?,
        channel_codes::DEL_CONTACT_WAY => send_as_is(&wecom, db, call, now).await?,
        other => {
            let error = format!("UNKNOWN_API {other}");
            outbox::fail(db, call, &error, now).await?;
            return Ok(false);
        }
    };
    let answer = match sent {
        Sent::Answer(answer) => answer,
        Sent::Later(error) => {
            if try_later(db, settings, call, error, now).await? {
                claimed::gave_up(db, call, "NO_ANSWER after every attempt", now).await?;
            }
            return Ok(false);
        }
        Sent::GiveUp(error) => {
            outbox::fail(db, call, &error, now).await?;
            claimed::gave_up(db, call, &error, now).await?;
            return Ok(false);
        }
    };
    match call.api.as_str() {
        wecom_writes::MARK_TAG | wecom_writes::REMARK => {
            if answer["errcode"].as_i64().unwrap_or(0) != 0 {
                writes::take_back(engine, &tenant, call, now).await?;
            }
        }
        transfer::RESIGNED_GROUPS | transfer::ON_JOB_GROUPS => {
            apply_groups(engine, &tenant, call, &answer, now).await?;
        }
        campaign::ADD_MSG_TEMPLATE | campaign::ADD_MOMENT_TASK => {
            apply_campaign(db, &tenant, call, &answer, now).await?;
        }
        welcome::SEND_WELCOME => {
            claimed::apply_welcome(engine, &tenant, call, &answer, now).await?
        }
        channel_codes::ADD_CONTACT_WAY | channel_codes::DEL_CONTACT_WAY => {
            claimed::apply_contact_way(db, call, &answer, now).await?;
        }
        _ => apply_customers(engine, &tenant, call, &answer, now).await?,
    }
    outbox::answered(db, call, &answer, now).await?;
    Ok(true)
}

/// What one attempt came to.
pub(crate) enum Sent {
    /// WeCom answered (a whole-call refusal is an answer: every item gets its errcode).
    Answer(Value),
    Later(ClientError),
    /// No answer, and no later try can help (a welcome code's 20 seconds are over).
    GiveUp(String),
}

/// WeCom's answer to `result`, or a later try for what it did not carry out.
fn sent(result: Result<Value, ClientError>, refuse_all: impl FnOnce(i64, &str) -> Value) -> Sent {
    match result {
        Ok(answer) => Sent::Answer(answer),
        Err(ClientError::Api { errcode, errmsg }) if !TRY_AGAIN.contains(&errcode) => {
            Sent::Answer(refuse_all(errcode, &errmsg))
        }
        Err(e) => Sent::Later(e),
    }
}

async fn send_customers(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    let known: HashSet<String> = if call.status == CallStatus::Sending {
        // An earlier attempt may have been carried out: WeCom lists what it holds.
        let (from, to) = pair(&call.request, "handover_userid", "takeover_userid");
        let api = transfer::result_api(&call.api).unwrap_or(transfer::RESIGNED_RESULT);
        match results(wecom, api, from, to).await {
            Ok(listed) => listed.into_keys().collect(),
            Err(e) => return Ok(Sent::Later(e)),
        }
    } else {
        HashSet::new()
    };
    send_rest(
        wecom,
        db,
        call,
        now,
        &CUSTOMERS,
        known.into_iter().collect(),
    )
    .await
}

/// Sends `call`'s request as it is, marked `sending` first; WeCom's refusal of it is
/// its answer. A tag or remark edit goes this way: sending one again is harmless (it
/// sets, it does not add), so a call whose answer was lost is simply sent again; calls
/// about one customer go one at a time, oldest first (`outbox::due`), so an older edit
/// never lands after a newer.
pub(crate) async fn send_as_is(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    outbox::sending(db, call, now).await?;
    let result = wecom.post(&call.api, &call.request).await;
    Ok(sent(
        result,
        |errcode, errmsg| json!({ "errcode": errcode, "errmsg": errmsg }),
    ))
}

async fn send_groups(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    let asked = answers::groups_asked(&call.request);
    let owner = call.request["new_owner"].as_str().unwrap_or_default();
    let mut moved = Vec::new();
    if call.status == CallStatus::Sending {
        // An earlier attempt may have moved them: a group WeCom shows with its new
        // owner is not moved again.
        for group in &asked {
            match wecom.group_chat(group).await {
                Ok(chat) if chat.owner == owner => moved.push(group.clone()),
                Ok(_) => {}
                Err(e) => return Ok(Sent::Later(e)),
            }
        }
    }
    send_rest(wecom, db, call, now, &GROUPS, moved).await
}

/// A guide's mass-message task. A call found `sending` may have created the task
/// already: WeCom's list of the guide's tasks is searched for one with this text that
/// holds this call's customers, and only when there is none is it created again.
async fn send_mass_message(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    if call.status == CallStatus::Sending {
        match created_before(wecom, call, now).await {
            Ok(Some(msgid)) => {
                outbox::sending(db, call, now).await?;
                let found = json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid,
                                    "fail_list": [], "found_again": true });
                return Ok(Sent::Answer(found));
            }
            Ok(None) => {}
            Err(e) => return Ok(Sent::Later(e)),
        }
    }
    send_as_is(wecom, db, call, now).await
}

/// The task an earlier attempt of `call` created, if WeCom has one: the guide's tasks
/// of the last week with the call's text, one of whose customers is the call's.
async fn created_before(
    wecom: &TenantApi<'_>,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Option<String>, ClientError> {
    let sender = call.request["sender"].as_str().unwrap_or_default();
    let text = call.request["text"]["content"].as_str().unwrap_or_default();
    let ours: HashSet<String> = answers::ids(&call.request, "external_userid")
        .into_iter()
        .collect();
    let start = (now - Duration::days(7)).timestamp();
    for task in wecom.groupmsg_list(sender, start, now.timestamp()).await? {
        if task.text != text {
            continue;
        }
        let page = wecom
            .groupmsg_send_result(&task.msgid, sender, None, 1)
            .await?;
        if page
            .results
            .first()
            .is_some_and(|r| ours.contains(&r.external_userid))
        {
            return Ok(Some(task.msgid));
        }
    }
    Ok(None)
}

/// A guide's Moment post. WeCom keeps no key for a post job, so one whose answer was
/// lost is not sent again (a guide would get the post twice): it is given up, and
/// operations see why.
async fn send_moment(
    db: &engine::db::Database,
    wecom: &TenantApi<'_>,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    if call.status == CallStatus::Sending {
        let ours = json!({ "errcode": 0, "errmsg": "the answer was lost: the post may exist, \
                           it is not sent again", "answer_lost": true });
        return Ok(Sent::Answer(ours));
    }
    send_as_is(wecom, db, call, now).await
}

/// WeCom's answer to a campaign's call: a refused call is each of its customers'
/// outcome; otherwise WeCom holds the task, less the customers it listed as not the
/// guide's friends.
async fn apply_campaign(
    db: &engine::db::Database,
    tenant: &TenantId,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    use engine::campaign::items;
    let Some(job) = call.subject.as_deref() else {
        return Ok(());
    };
    let id = Some(call.call_id.as_str());
    if answer["answer_lost"].as_bool() == Some(true) {
        items::move_all(db, tenant, job, id, items::PLANNED, items::ANSWER_LOST, now).await?;
        return Ok(());
    }
    let errcode = answer["errcode"].as_i64().unwrap_or(0);
    if errcode != 0 {
        let code = format!("WECOM_{errcode}");
        items::move_all(db, tenant, job, id, items::PLANNED, &code, now).await?;
        return Ok(());
    }
    let not_friends: Vec<items::Outcome> = answers::ids(answer, "fail_list")
        .into_iter()
        .map(|customer| items::Outcome {
            customer,
            outcome: items::NOT_FRIEND.to_string(),
            delivered_at: None,
        })
        .collect();
    items::record(db, tenant, job, &not_friends, now).await?;
    items::move_all(db, tenant, job, id, items::PLANNED, items::SENT, now).await?;
    Ok(())
}

/// Where a call's items sit in WeCom's request and answer.
struct Items {
    /// The request's list of ids.
    asked: &'static str,
    /// The answer's list of items (customers with their errcode, groups that failed).
    answered: &'static str,
    /// An item's id in that list.
    id: &'static str,
    /// Where our own answer lists the items WeCom already held.
    held: &'static str,
}

const CUSTOMERS: Items = Items {
    asked: "external_userid",
    answered: "customer",
    id: "external_userid",
    held: "already_sent",
};

const GROUPS: Items = Items {
    asked: "chat_id_list",
    answered: "failed_chat_list",
    id: "chat_id",
    held: "already_moved",
};

/// Sends the items of `call` WeCom does not hold yet (`held`), marking the call
/// `sending` first; with none left, the answer is ours. WeCom's refusal of the whole
/// call is every item's.
async fn send_rest(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
    items: &Items,
    held: Vec<String>,
) -> Result<Sent, OutboundError> {
    let answer = |errcode: i64, errmsg: &str, each: Vec<Value>| {
        let mut body = serde_json::Map::new();
        body.insert("errcode".into(), json!(errcode));
        body.insert("errmsg".into(), json!(errmsg));
        body.insert(items.answered.into(), json!(each));
        body
    };
    let rest: Vec<String> = answers::ids(&call.request, items.asked)
        .into_iter()
        .filter(|i| !held.contains(i))
        .collect();
    outbox::sending(db, call, now).await?;
    if rest.is_empty() {
        let mut ours = answer(0, "ok", Vec::new());
        ours.insert(items.held.into(), json!(held));
        return Ok(Sent::Answer(Value::Object(ours)));
    }
    let mut body = call.request.clone();
    body[items.asked] = json!(rest);
    let result = wecom.post(&call.api, &body).await;
    Ok(sent(result, |errcode, errmsg| {
        let each = rest
            .iter()
            .map(|i| json!({ (items.id): i, "errcode": errcode, "errmsg": errmsg }))
            .collect();
        Value::Object(answer(errcode, errmsg, each))
    }))
}

/// No answer to record: again later, or never after the last attempt (`true`).
async fn try_later(
    db: &engine::db::Database,
    settings: &OutboundSettings,
    call: &DueCall,
    error: ClientError,
    now: DateTime<Utc>,
) -> Result<bool, OutboundError> {
    // `sending` counted this attempt when it got that far; a failed reconcile did not.
    let attempts = call.attempts + 1;
    let busy = matches!(&error, ClientError::Api { errcode, .. } if TRY_AGAIN.contains(errcode));
    let text = format!("{}: {error}", if busy { "WECOM_BUSY" } else { "NO_ANSWER" });
    if attempts >= settings.max_attempts {
        tracing::warn!(call = %call.call_id, %error, "a WeCom call is given up");
        outbox::fail(db, call, &text, now).await?;
        return Ok(true);
    }
    // WeCom said it did nothing; otherwise nobody knows, and the next attempt asks.
    let status = if busy && call.status == CallStatus::Pending {
        CallStatus::Pending
    } else {
        CallStatus::Sending
    };
    outbox::retry_later(db, call, status, now + backoff(attempts), &text, now).await?;
    Ok(false)
}

fn pair<'a>(request: &'a Value, from: &str, to: &str) -> (&'a str, &'a str) {
    (
        request[from].as_str().unwrap_or_default(),
        request[to].as_str().unwrap_or_default(),
    )
}

/// Every customer WeCom lists for a pair of guides, with its status, page by page.
async fn results(
    wecom: &TenantApi<'_>,
    api: &str,
    from: &str,
    to: &str,
) -> Result<BTreeMap<String, i64>, ClientError> {
    let mut listed = BTreeMap::new();
    let mut cursor = String::new();
    for _ in 0..RESULT_PAGES {
        let body = json!({ "handover_userid": from, "takeover_userid": to, "cursor": cursor });
        let (page, next) = answers::result_page(&wecom.post(api, &body).await?);
        listed.extend(page);
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    Ok(listed)
}

/// The customers WeCom would not transfer: their handovers end refused with its errcode.
async fn apply_customers(
    engine: &Engine,
    tenant: &TenantId,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    let Some(job) = call.subject.as_deref() else {
        return Ok(());
    };
    let due = answers::customers_refused(answer)
        .into_iter()
        .map(|(customer, errcode)| Due {
            tenant: tenant.to_string(),
            key: format!("wecom:{}:{customer}", call.call_id),
            command: CustomerCommand::RefuseHandover {
                handover: handover_id(tenant, job, &customer),
                reason: domain::customer::RefusalReason::Rejected { errcode },
            },
            customer,
        })
        .collect();
    sweep::run(engine, "wecom-transfer", now, due, already_concluded).await;
    Ok(())
}

/// The groups WeCom moved get their new owner; every group's item gets WeCom's word.
async fn apply_groups(
    engine: &Engine,
    tenant: &TenantId,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    let failed = answers::groups_failed(answer);
    let owner = call.request["new_owner"].as_str().unwrap_or_default();
    let Ok(to) = domain::values::StaffId::parse(owner) else {
        return Ok(());
    };
    let mut done = Vec::new();
    for group in answers::groups_asked(&call.request) {
        let (code, status) = match failed.get(&group) {
            Some(errcode) => (format!("WECOM_{errcode}"), TransferStatus::NoRecord),
            None => {
                let meta = CommandMeta::new(
                    tenant.clone(),
                    Actor::integration("wecom"),
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, call.call_id.as_bytes()),
                )
                .with_idempotency_key(format!("wecom:{}:{group}", call.call_id));
                let transfer = GroupCommand::TransferOwnership {
                    to: to.clone(),
                    // A departed owner leaves the group as it moves (DOMAIN.md).
                    previous_owner_leaves: call.api == transfer::RESIGNED_GROUPS,
                };
                match engine
                    .groups
                    .execute(
                        &stream_id(tenant, &group),
                        Stamped::new(now, transfer),
                        &meta,
                    )
                    .await
                {
                    Ok(_) => (items::TRANSFERRED.to_string(), TransferStatus::Accepted),
                    Err(CommandError::Rejected(e)) => {
                        (e.code().to_string(), TransferStatus::NoRecord)
                    }
                    Err(e) => return Err(command(e)),
                }
            }
        };
        done.push(items::Done {
            item_id: group,
            code,
            status,
        });
    }
    if let Some(job) = call.subject.as_deref() {
        items::groups_answered(&engine.db, tenant, job, &done, now).await?;
    }
    Ok(())
}

/// The handover was concluded already (the 24-hour rule, a notice, an earlier answer).
fn already_concluded(refusal: &CustomerError) -> bool {
    matches!(refusal, CustomerError::NoSuchHandover)
}

/// Reads `transfer_result` for every pair of guides with handovers waiting in a tenant
/// that acts in WeCom (each pair at most once per `poll_every`), and concludes the
/// handovers WeCom concluded. Returns how many concluded now.
pub async fn poll_results(
    engine: &Engine,
    api: &WecomApi,
    polled: &Mutex<LastPolled>,
    settings: &OutboundSettings,
    now: DateTime<Utc>,
) -> Result<usize, OutboundError> {
    let pairs: Vec<(String, String, String, String)> = on_pool!(&engine.db, |pool| {
        sqlx::query_as(
            "SELECT DISTINCT h.tenant_id, h.from_staff_id, h.to_staff_id, h.kind \
             FROM rm_handover h WHERE h.status = 'waiting' \
             AND EXISTS (SELECT 1 FROM wecom_callback_config c WHERE c.tenant_id = h.tenant_id \
               AND c.corp_id IS NOT NULL AND c.corp_secret IS NOT NULL) \
             ORDER BY h.tenant_id, h.from_staff_id, h.to_staff_id LIMIT $1",
        )
        .bind(PAIRS_PER_TICK)
        .fetch_all(pool)
        .await
    })?;
    let mut concluded = 0;
    for (tenant, from, to, kind) in pairs {
        let key = (tenant.clone(), from.clone(), to.clone());
        {
            let polled = polled.lock().unwrap_or_else(|p| p.into_inner());
            if polled
                .get(&key)
                .is_some_and(|at| now < *at + settings.poll_every)
            {
                continue;
            }
        }
        let Ok(tenant_id) = TenantId::parse(tenant.as_str()) else {
            continue;
        };
        let Some(credentials) = inbox::config(&engine.db, &tenant_id)
            .await?
            .and_then(|c| c.api)
        else {
            continue;
        };
        let wecom = api.for_tenant(&tenant, &credentials);
        let result_api = if kind == "on_job" {
            transfer::ON_JOB_RESULT
        } else {
            transfer::RESIGNED_RESULT
        };
        let listed = match results(&wecom, result_api, &from, &to).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%tenant, %from, %to, %error, "transfer results could not be read");
                continue;
            }
        };
        polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, now);
        let waiting = waiting_between(engine, &tenant, &from, &to).await?;
        let due: Vec<Due> = listed
            .into_iter()
            .filter_map(|(customer, status)| {
                let handover = *waiting.get(&customer)?;
                let command = match answers::concluded(status)? {
                    Concluded::Accepted => CustomerCommand::AcceptHandover {
                        handover,
                        trigger: AcceptTrigger::Reported,
                    },
                    Concluded::Refused(reason) => {
                        CustomerCommand::RefuseHandover { handover, reason }
                    }
                };
                Some(Due {
                    tenant: tenant.clone(),
                    customer,
                    key: format!("wecom-result:{handover}"),
                    command,
                })
            })
            .collect();
        concluded += sweep::run(engine, "wecom-transfer-result", now, due, already_concluded).await;
    }
    Ok(concluded)
}

/// The waiting handovers from one guide to another, by customer.
async fn waiting_between(
    engine: &Engine,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<HashMap<String, Uuid>, OutboundError> {
    let rows: Vec<(String, String)> = on_pool!(&engine.db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, handover_id FROM rm_handover WHERE tenant_id = $1 \
             AND from_staff_id = $2 AND to_staff_id = $3 AND status = 'waiting'",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(customer, handover)| Some((customer, Uuid::parse_str(&handover).ok()?)))
        .collect())
}

/// The outbound path as the job runner's periodic work: due calls sent, then transfer
/// results read, by one server at a time.
#[derive(Debug, Clone)]
pub struct OutboxTick {
    pub api: WecomApi,
    pub settings: OutboundSettings,
    polled: Arc<Mutex<LastPolled>>,
}

impl OutboxTick {
    pub fn new(api: WecomApi, settings: OutboundSettings) -> Self {
        Self {
            api,
            settings,
            polled: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl engine::jobs::Periodic for OutboxTick {
    async fn tick(&self, jobs: &engine::jobs::Jobs) {
        let lease = match engine::lease::try_lease(jobs.db(), "scrm-wecom-outbox").await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "could not take the WeCom outbox's lease");
                return;
            }
        };
        let now = jobs.clock().now();
        if let Err(error) = send_due(jobs.engine(), &self.api, &self.settings, now).await {
            tracing::error!(%error, "could not send WeCom calls");
        }
        let polled = &self.polled;
        if let Err(error) =
            poll_results(jobs.engine(), &self.api, polled, &self.settings, now).await
        {
            tracing::error!(%error, "could not read WeCom transfer results");
        }
        lease.release().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_wecom_is_asked_again_later_and_later() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(20), Duration::seconds(3_600));
    }
}
