//! The campaign APIs of the fake.
//!
//! Mass messages (群发): `add_msg_template` creates one guide's task, and
//! `get_groupmsg_send_result` reports it customer by customer, in pages. As in WeCom, a
//! task is only created: its customers stay unsent (status 0) until the guide confirms
//! it in the app ([`FakeWecom::confirm_mass_message`]). Customers who are not the guide's
//! friends are in `fail_list`; a customer who already received a mass message that day
//! ends with status 3.
//!
//! Moments (朋友圈): `add_moment_task` starts a job that is still running the first time
//! its result is asked and done after; guides WeCom cannot give the post to are listed
//! as invalid. `get_moment_customer_list` lists the customers a guide's post reached
//! once the guide published it ([`FakeWecom::publish_moment`]).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, strings, FakeWecom, Shared};

pub const ADD_MSG_TEMPLATE: &str = "/cgi-bin/externalcontact/add_msg_template";
pub const SEND_RESULT: &str = "/cgi-bin/externalcontact/get_groupmsg_send_result";
pub const ADD_MOMENT_TASK: &str = "/cgi-bin/externalcontact/add_moment_task";
pub const MOMENT_TASK_RESULT: &str = "/cgi-bin/externalcontact/get_moment_task_result";
pub const MOMENT_CUSTOMERS: &str = "/cgi-bin/externalcontact/get_moment_customer_list";
pub const GROUPMSG_LIST: &str = "/cgi-bin/externalcontact/get_groupmsg_list_v2";

/// WeCom's bounds and errcodes the fake answers with.
const MAX_CUSTOMERS: usize = 10_000;
const MAX_PAGE: usize = 1_000;
const TOO_MANY: i64 = 40058;
const NO_SUCH_TASK: i64 = 41063;

#[derive(Debug, Default)]
pub(super) struct MassMessages {
    /// (guide, customer) pairs that are not friends: such customers go to `fail_list`.
    not_friends: BTreeSet<(String, String)>,
    /// Customers who already received a mass message today (from another company app).
    received_today: BTreeSet<String>,
    /// msgid -> the task.
    tasks: BTreeMap<String, Task>,
    /// jobid -> the Moment job.
    moment_jobs: BTreeMap<String, MomentJob>,
    /// Guides WeCom cannot give a post to (left, or outside the app's range).
    invalid_senders: BTreeSet<String>,
    /// Each guide's customers, who see the guide's published posts.
    guide_customers: BTreeMap<String, Vec<String>>,
    /// (moment_id, guide) pairs published.
    published: BTreeSet<(String, String)>,
}

#[derive(Debug, Clone)]
struct MomentJob {
    moment_id: String,
    invalid: Vec<String>,
    /// How often its result was asked.
    asked: usize,
}

#[derive(Debug, Clone)]
struct Task {
    sender: String,
    text: String,
    /// Unix seconds.
    created: i64,
    /// Customer -> status (0 unsent, 1 sent, 2 not a friend, 3 already received today)
    /// and when it was sent (Unix seconds).
    customers: BTreeMap<String, (i64, i64)>,
}

async fn add_msg_template(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, ADD_MSG_TEMPLATE, &query) {
        return answer;
    }
    let answer = create_task(&state, &body);
    if answer["errcode"] != 0 {
        return Json(answer).into_response();
    }
    // Created: the answer may still be lost on the way back (`lose_answers`).
    super::transfer::deliver(&state, Json(answer).into_response()).await
}

/// Creates the task `body` asks for, answering as WeCom does.
fn create_task(state: &Shared, body: &Value) -> Value {
    let mut s = state.lock().unwrap();
    let sender = body["sender"].as_str().unwrap_or_default().to_string();
    let asked = strings(body, "external_userid");
    if asked.len() > MAX_CUSTOMERS {
        return json!({ "errcode": TOO_MANY, "errmsg": "external_userid exceed limit" });
    }
    if body["text"]["content"].as_str().is_none_or(str::is_empty)
        && body["attachments"].as_array().is_none_or(Vec::is_empty)
    {
        return json!({ "errcode": 41048, "errmsg": "text and attachments are both empty" });
    }
    let m = &mut s.mass_messages;
    let (failed, reached): (Vec<String>, Vec<String>) = asked
        .into_iter()
        .partition(|c| m.not_friends.contains(&(sender.clone(), c.clone())));
    let msgid = format!("msg{:08}", m.tasks.len() + 1);
    m.tasks.insert(
        msgid.clone(),
        Task {
            sender,
            text: body["text"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            customers: reached.into_iter().map(|c| (c, (0, 0))).collect(),
            created: unix_now(),
        },
    );
    json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid, "fail_list": failed })
}

pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `get_groupmsg_list_v2`: a creator's one-to-one tasks created in a time range, in one
/// page (the fake's tasks are few).
async fn groupmsg_list(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, GROUPMSG_LIST, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let (start, end) = (
        body["start_time"].as_i64().unwrap_or(0),
        body["end_time"].as_i64().unwrap_or(i64::MAX),
    );
    if end < start {
        return errcode(40058, "end_time before start_time");
    }
    let creator = body["creator"].as_str();
    let listed: Vec<Value> = s
        .mass_messages
        .tasks
        .iter()
        .filter(|(_, t)| creator.is_none_or(|c| c == t.sender))
        .filter(|(_, t)| (start..=end).contains(&t.created))
        .map(|(msgid, t)| {
            json!({ "msgid": msgid, "creator": t.sender, "create_type": 0,
                    "create_time": t.created.to_string(), "text": { "content": t.text } })
        })
        .collect();
    ok(json!({ "group_msg_list": listed, "next_cursor": "" }))
}

async fn send_result(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, SEND_RESULT, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let msgid = body["msgid"].as_str().unwrap_or_default();
    let Some(task) = s.mass_messages.tasks.get(msgid) else {
        return errcode(NO_SUCH_TASK, "msgid not exist");
    };
    if body["userid"].as_str() != Some(task.sender.as_str()) {
        return errcode(NO_SUCH_TASK, "msgid not exist for this userid");
    }
    let limit = body["limit"]
        .as_u64()
        .map_or(MAX_PAGE, |l| (l as usize).clamp(1, MAX_PAGE));
    let from = body["cursor"].as_str().unwrap_or_default();
    let page: Vec<Value> = task
        .customers
        .range::<str, _>((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
        .take(limit)
        .map(|(customer, (status, at))| {
            json!({
                "external_userid": customer,
                "userid": task.sender,
                "status": status,
                "send_time": at,
            })
        })
        .collect();
    let last = page
        .last()
        .and_then(|p| p["external_userid"].as_str())
        .filter(|c| {
            task.customers
                .range::<str, _>((std::ops::Bound::Excluded(*c), std::ops::Bound::Unbounded))
                .next()
                .is_some()
        });
    ok(json!({ "send_list": page, "next_cursor": last.unwrap_or_default() }))
}

async fn add_moment_task(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, ADD_MOMENT_TASK, &query) {
        return answer;
    }
    if body["text"]["content"].as_str().is_none_or(str::is_empty)
        && body["attachments"].as_array().is_none_or(Vec::is_empty)
    {
        return errcode(41048, "text and attachments are both empty");
    }
    let senders = strings(&body["visible_range"]["sender_list"], "user_list");
    let mut s = state.lock().unwrap();
    let m = &mut s.mass_messages;
    let n = m.moment_jobs.len() + 1;
    let job = MomentJob {
        moment_id: format!("mom{n:06}"),
        invalid: senders
            .into_iter()
            .filter(|g| m.invalid_senders.contains(g))
            .collect(),
        asked: 0,
    };
    let jobid = format!("job{n:06}");
    m.moment_jobs.insert(jobid.clone(), job);
    ok(json!({ "jobid": jobid }))
}

async fn moment_task_result(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(answer) = refuse(&state, MOMENT_TASK_RESULT, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    let jobid = query.get("jobid").cloned().unwrap_or_default();
    let Some(job) = s.mass_messages.moment_jobs.get_mut(&jobid) else {
        return errcode(NO_SUCH_TASK, "jobid not exist");
    };
    job.asked += 1;
    if job.asked == 1 {
        return ok(json!({ "status": 2, "type": "add_moment_task" }));
    }
    ok(json!({
        "status": 3,
        "type": "add_moment_task",
        "result": {
            "errcode": 0,
            "errmsg": "ok",
            "moment_id": job.moment_id,
            "invalid_sender_list": { "user_list": job.invalid },
        },
    }))
}

async fn moment_customers(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, MOMENT_CUSTOMERS, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let m = &s.mass_messages;
    let moment = body["moment_id"].as_str().unwrap_or_default().to_string();
    let guide = body["userid"].as_str().unwrap_or_default().to_string();
    if !m.moment_jobs.values().any(|j| j.moment_id == moment) {
        return errcode(NO_SUCH_TASK, "moment_id not exist");
    }
    let reached: Vec<&String> = if m.published.contains(&(moment, guide.clone())) {
        m.guide_customers
            .get(&guide)
            .into_iter()
            .flatten()
            .collect()
    } else {
        Vec::new()
    };
    let limit = body["limit"]
        .as_u64()
        .map_or(MAX_PAGE, |l| (l as usize).clamp(1, MAX_PAGE));
    let from: usize = body["cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = reached
        .iter()
        .skip(from)
        .take(limit)
        .map(|c| json!({ "userid": guide, "external_userid": c }))
        .collect();
    let next = from + page.len();
    let cursor = if next < reached.len() {
        next.to_string()
    } else {
        String::new()
    };
    ok(json!({ "customer_list": page, "next_cursor": cursor }))
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(ADD_MSG_TEMPLATE, post(add_msg_template))
        .route(SEND_RESULT, post(send_result))
        .route(GROUPMSG_LIST, post(groupmsg_list))
        .route(ADD_MOMENT_TASK, post(add_moment_task))
        .route(MOMENT_TASK_RESULT, get(moment_task_result))
        .route(MOMENT_CUSTOMERS, post(moment_customers))
}

impl FakeWecom {
    /// `customer` is not a friend of `guide`: a task of the guide lists it in `fail_list`.
    pub fn not_friends(&self, guide: &str, customer: &str) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages
            .not_friends
            .insert((guide.to_string(), customer.to_string()));
    }

    /// `customer` already received a mass message today.
    pub fn received_today(&self, customer: &str) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages.received_today.insert(customer.to_string());
    }

    /// The guide confirms task `msgid` in the app at `at` (Unix seconds): each customer
    /// receives it, or not (status 3) if they already received one today.
    pub fn confirm_mass_message(&self, msgid: &str, at: i64) {
        let mut s = self.state.lock().unwrap();
        let m = &mut s.mass_messages;
        let Some(task) = m.tasks.get_mut(msgid) else {
            panic!("no task {msgid}");
        };
        for (customer, result) in task.customers.iter_mut() {
            if result.0 != 0 {
                continue;
            }
            *result = if m.received_today.insert(customer.clone()) {
                (1, at)
            } else {
                (3, 0)
            };
        }
    }

    /// WeCom cannot give `guide` a post (left, or outside the app's range).
    pub fn invalid_moment_sender(&self, guide: &str) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages.invalid_senders.insert(guide.to_string());
    }

    /// `guide`'s customers, who see the guide's published posts.
    pub fn guide_customers(&self, guide: &str, customers: &[&str]) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages.guide_customers.insert(
            guide.to_string(),
            customers.iter().map(|c| c.to_string()).collect(),
        );
    }

    /// `guide` publishes post `moment_id` in the app.
    pub fn publish_moment(&self, moment_id: &str, guide: &str) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages
            .published
            .insert((moment_id.to_string(), guide.to_string()));
    }

    /// A new day: nobody has received a mass message today.
    pub fn new_day(&self) {
        let mut s = self.state.lock().unwrap();
        s.mass_messages.received_today.clear();
    }

    /// Every task created: msgid, guide, and how many customers it holds.
    pub fn mass_message_tasks(&self) -> Vec<(String, String, usize)> {
        let s = self.state.lock().unwrap();
        s.mass_messages
            .tasks
            .iter()
            .map(|(id, t)| (id.clone(), t.sender.clone(), t.customers.len()))
            .collect()
    }

    /// Every guide confirms every task at `at` (Unix seconds).
    pub fn confirm_all_mass_messages(&self, at: i64) {
        let ids: Vec<String> = self.mass_message_tasks().into_iter().map(|t| t.0).collect();
        for id in ids {
            self.confirm_mass_message(&id, at);
        }
    }

    /// The text of every task created, by msgid.
    pub fn mass_message_texts(&self) -> BTreeMap<String, String> {
        let s = self.state.lock().unwrap();
        s.mass_messages
            .tasks
            .iter()
            .map(|(id, t)| (id.clone(), t.text.clone()))
            .collect()
    }
}
