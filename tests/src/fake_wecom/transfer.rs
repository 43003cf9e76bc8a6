//! The handover APIs of the fake: customers' transfers (resigned and on-job), their
//! results, and group transfers, in the documented shapes, with WeCom's per-item
//! errcodes, its 100-a-call bound and its "already in transfer" refusal. A test decides
//! for each customer what they answer, and can make WeCom act and then lose its answer
//! (or hold it until released) to stand for a crash between call and answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, strings, Shared};

pub const RESIGNED_CUSTOMERS: &str = "/cgi-bin/externalcontact/resigned/transfer_customer";
pub const ON_JOB_CUSTOMERS: &str = "/cgi-bin/externalcontact/transfer_customer";
pub const RESIGNED_RESULT: &str = "/cgi-bin/externalcontact/resigned/transfer_result";
pub const ON_JOB_RESULT: &str = "/cgi-bin/externalcontact/transfer_result";
pub const RESIGNED_GROUPS: &str = "/cgi-bin/externalcontact/groupchat/transfer";
pub const ON_JOB_GROUPS: &str = "/cgi-bin/externalcontact/groupchat/onjob_transfer";
pub const UNASSIGNED: &str = "/cgi-bin/externalcontact/get_unassigned_list";

/// WeCom's own errcodes the fake answers with.
pub const INVALID_EXTERNAL_USERID: i64 = 40096;
pub const ALREADY_IN_TRANSFER: i64 = 40129;
const TOO_MANY: i64 = 40058;
/// `transfer_result` pages: small, so paging is exercised.
const RESULT_PAGE: usize = 50;

/// What the fake holds about handovers.
#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// Per customer: the errcode the transfer call answers instead of starting it.
    rejects: BTreeMap<String, i64>,
    /// Per customer: what they answered (1 accepted, 3 refused, ...); 2 until then.
    decisions: BTreeMap<String, i64>,
    /// (handover_userid, takeover_userid) -> customers transferred between them.
    started: BTreeMap<(String, String), Vec<String>>,
    /// How many transfers WeCom started per customer.
    per_customer: BTreeMap<String, usize>,
    /// Per group: the errcode `failed_chat_list` gives it.
    group_failures: BTreeMap<String, i64>,
    /// Moves per group.
    per_group: BTreeMap<String, usize>,
    /// Transfer and mass-message calls to carry out and then answer with HTTP 502, as
    /// if the answer was lost on the way back.
    lose_answers: usize,
    /// Carry transfer calls out, then hold the answer until released.
    hold: Option<Arc<tokio::sync::Notify>>,
    /// `get_unassigned_list`'s `info` entries.
    unassigned: Vec<Value>,
}

/// After acting: lose or hold the answer if the test asked for it.
pub(super) async fn deliver(state: &Shared, answer: Response) -> Response {
    let (lose, hold) = {
        let mut s = state.lock().unwrap();
        let lose = s.transfers.lose_answers > 0;
        if lose {
            s.transfers.lose_answers -= 1;
        }
        (lose, s.transfers.hold.clone())
    };
    if let Some(hold) = hold {
        hold.notified().await;
    }
    if lose {
        return (
            axum::http::StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>",
        )
            .into_response();
    }
    answer
}

async fn customers(
    path: &'static str,
    state: Shared,
    query: BTreeMap<String, String>,
    body: Value,
) -> Response {
    if let Some(answer) = refuse(&state, path, &query) {
        return answer;
    }
    let answer = {
        let mut s = state.lock().unwrap();
        let from = body["handover_userid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let to = body["takeover_userid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let asked = strings(&body, "external_userid");
        if asked.len() > 100 || asked.is_empty() {
            return errcode(TOO_MANY, "external_userid exceed limit");
        }
        if from == to {
            return errcode(40098, "handover and takeover are the same");
        }
        let t = &mut s.transfers;
        let mut answers = Vec::new();
        for customer in asked {
            let in_transfer = t
                .started
                .values()
                .flatten()
                .any(|c| *c == customer && t.decisions.get(c).is_none_or(|d| *d == 2));
            let code = match t.rejects.get(&customer) {
                Some(code) => *code,
                None if in_transfer => ALREADY_IN_TRANSFER,
                None => 0,
            };
            if code == 0 {
                t.started
                    .entry((from.clone(), to.clone()))
                    .or_default()
                    .push(customer.clone());
                *t.per_customer.entry(customer.clone()).or_default() += 1;
            }
            answers.push(json!({ "external_userid": customer, "errcode": code }));
        }
        ok(json!({ "customer": answers }))
    };
    deliver(&state, answer).await
}

async fn resigned_customers(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    customers(RESIGNED_CUSTOMERS, state, query, body).await
}

async fn on_job_customers(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    customers(ON_JOB_CUSTOMERS, state, query, body).await
}

fn result(
    path: &'static str,
    state: &Shared,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Response {
    if let Some(answer) = refuse(state, path, query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let pair = (
        body["handover_userid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["takeover_userid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let start: usize = body["cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let all = s.transfers.started.get(&pair).cloned().unwrap_or_default();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(RESULT_PAGE)
        .map(|c| {
            let status = s.transfers.decisions.get(c).copied().unwrap_or(2);
            let takeover_time = if status == 1 { 1_767_225_600 } else { 0 };
            json!({ "external_userid": c, "status": status, "takeover_time": takeover_time })
        })
        .collect();
    let next = if start + RESULT_PAGE < all.len() {
        (start + RESULT_PAGE).to_string()
    } else {
        String::new()
    };
    ok(json!({ "customer": page, "next_cursor": next }))
}

async fn resigned_result(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    result(RESIGNED_RESULT, &state, &query, &body)
}

async fn on_job_result(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    result(ON_JOB_RESULT, &state, &query, &body)
}

async fn groups(
    path: &'static str,
    state: Shared,
    query: BTreeMap<String, String>,
    body: Value,
) -> Response {
    if let Some(answer) = refuse(&state, path, &query) {
        return answer;
    }
    let answer = {
        let mut s = state.lock().unwrap();
        let owner = body["new_owner"].as_str().unwrap_or_default().to_string();
        let asked = strings(&body, "chat_id_list");
        if asked.len() > 100 || asked.is_empty() {
            return errcode(TOO_MANY, "chat_id_list exceed limit");
        }
        let mut failed = Vec::new();
        for chat in asked {
            if let Some(code) = s.transfers.group_failures.get(&chat) {
                failed.push(json!({ "chat_id": chat, "errcode": code, "errmsg": "failed" }));
                continue;
            }
            *s.transfers.per_group.entry(chat.clone()).or_default() += 1;
            let entry = s
                .chats
                .entry(chat.clone())
                .or_insert_with(|| json!({ "chat_id": chat, "name": "", "member_list": [] }));
            entry["owner"] = json!(owner);
        }
        ok(json!({ "failed_chat_list": failed }))
    };
    deliver(&state, answer).await
}

async fn resigned_groups(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    groups(RESIGNED_GROUPS, state, query, body).await
}

async fn on_job_groups(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    groups(ON_JOB_GROUPS, state, query, body).await
}

async fn unassigned(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, UNASSIGNED, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let size = body["page_size"].as_u64().unwrap_or(1_000).clamp(1, 1_000) as usize;
    let start: usize = body["cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let all = &s.transfers.unassigned;
    let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let is_last = start + size >= all.len();
    let next = if is_last {
        String::new()
    } else {
        (start + size).to_string()
    };
    ok(json!({ "info": page, "is_last": is_last, "next_cursor": next }))
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(RESIGNED_CUSTOMERS, post(resigned_customers))
        .route(ON_JOB_CUSTOMERS, post(on_job_customers))
        .route(RESIGNED_RESULT, post(resigned_result))
        .route(ON_JOB_RESULT, post(on_job_result))
        .route(RESIGNED_GROUPS, post(resigned_groups))
        .route(ON_JOB_GROUPS, post(on_job_groups))
        .route(UNASSIGNED, post(unassigned))
}

impl super::FakeWecom {
    /// The transfer call answers `code` for this customer and starts nothing.
    pub fn reject_transfer(&self, customer: &str, code: i64) {
        let mut s = self.state.lock().unwrap();
        s.transfers.rejects.insert(customer.to_string(), code);
    }

    /// What the customer answers: 1 accepted, 3 refused, 4 successor at limit.
    pub fn customer_answers(&self, customer: &str, status: i64) {
        let mut s = self.state.lock().unwrap();
        s.transfers.decisions.insert(customer.to_string(), status);
    }

    /// `failed_chat_list` gives this group `code`.
    pub fn fail_group(&self, chat: &str, code: i64) {
        let mut s = self.state.lock().unwrap();
        s.transfers.group_failures.insert(chat.to_string(), code);
    }

    /// The next `n` transfer calls are carried out and their answers lost.
    pub fn lose_answers(&self, n: usize) {
        self.state.lock().unwrap().transfers.lose_answers = n;
    }

    /// Transfer calls are carried out and answered only once the returned handle is
    /// notified (`notify_waiters`) and holding is off again.
    pub fn hold_answers(&self) -> Arc<tokio::sync::Notify> {
        let hold = Arc::new(tokio::sync::Notify::new());
        self.state.lock().unwrap().transfers.hold = Some(hold.clone());
        hold
    }

    /// Lets held answers go.
    pub fn release_answers(&self) {
        let hold = self.state.lock().unwrap().transfers.hold.take();
        if let Some(hold) = hold {
            hold.notify_waiters();
        }
    }

    /// What `get_unassigned_list` lists: `(departed userid, customer, dimission time)`.
    pub fn set_unassigned(&self, entries: &[(&str, &str, i64)]) {
        let mut s = self.state.lock().unwrap();
        s.transfers.unassigned = entries
            .iter()
            .map(|(u, c, t)| json!({ "handover_userid": u, "external_userid": c, "dimission_time": t }))
            .collect();
    }

    /// How many transfers WeCom started, per customer.
    pub fn transfers_per_customer(&self) -> BTreeMap<String, usize> {
        self.state.lock().unwrap().transfers.per_customer.clone()
    }

    /// How many times each group was moved.
    pub fn moves_per_group(&self) -> BTreeMap<String, usize> {
        self.state.lock().unwrap().transfers.per_group.clone()
    }

    /// The group's owner as WeCom holds it.
    pub fn group_owner(&self, chat: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.chats.get(chat)?["owner"].as_str().map(str::to_string)
    }
}
