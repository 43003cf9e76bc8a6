//! Welcome messages and 「联系我」 channel codes as WeCom answers them: a welcome code
//! honoured once and for 20 seconds from the friend-add (`send_welcome_msg`), and codes
//! made, listed, read and deleted (`add_contact_way`, `list_contact_way`,
//! `get_contact_way`, `del_contact_way`), each with the `state` a friend-add through it
//! carries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, strings, FakeWecom, Shared};

pub const SEND_WELCOME: &str = "/cgi-bin/externalcontact/send_welcome_msg";
pub const ADD_CONTACT_WAY: &str = "/cgi-bin/externalcontact/add_contact_way";
pub const LIST_CONTACT_WAY: &str = "/cgi-bin/externalcontact/list_contact_way";
pub const GET_CONTACT_WAY: &str = "/cgi-bin/externalcontact/get_contact_way";
pub const DEL_CONTACT_WAY: &str = "/cgi-bin/externalcontact/del_contact_way";

/// The errcode the fake gives for a welcome code that is unknown, spent or past its 20
/// seconds (the engine records whatever errcode comes, as `WECOM_<errcode>`).
pub const CODE_INVALID: i64 = 40058;
/// The errcode for a `config_id` WeCom does not hold.
pub const NO_SUCH_CODE: i64 = 41044;
const WINDOW: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
pub(super) struct Welcomes {
    /// Code -> when WeCom gave it out, and whether it was used.
    codes: BTreeMap<String, (Instant, bool)>,
    /// Every welcome WeCom accepted: the code, the body, when.
    sent: Vec<(String, Value, Instant)>,
    /// config_id -> the code as `get_contact_way` shows it.
    ways: BTreeMap<String, Value>,
    /// Guides `add_contact_way` refuses (as an unverified member is).
    refused_guides: Vec<String>,
}

async fn send_welcome(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, SEND_WELCOME, &query) {
        return answer;
    }
    let code = body["welcome_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    {
        let mut s = state.lock().unwrap();
        let w = &mut s.welcomes;
        match w.codes.get_mut(&code) {
            Some((given, used)) if !*used && given.elapsed() <= WINDOW => *used = true,
            _ => return errcode(CODE_INVALID, "invalid welcome_code"),
        }
        w.sent.push((code, body, Instant::now()));
    }
    super::transfer::deliver(&state, ok(json!({}))).await
}

async fn add_contact_way(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, ADD_CONTACT_WAY, &query) {
        return answer;
    }
    let answer = {
        let mut s = state.lock().unwrap();
        let w = &mut s.welcomes;
        let users = strings(&body, "user");
        if let Some(guide) = users.iter().find(|u| w.refused_guides.contains(u)) {
            return errcode(40098, &format!("member {guide} not verified"));
        }
        let state_text = body["state"].as_str().unwrap_or_default();
        if state_text.chars().count() > 30 {
            return errcode(40058, "state exceed 30 characters");
        }
        let config_id = format!("cfg{:06}", w.ways.len() + 1);
        let qr_code = format!("https://wework.qpic.cn/fake/{config_id}/0");
        let mut way = body.clone();
        way["config_id"] = json!(config_id);
        way["qr_code"] = json!(qr_code);
        way["created"] = json!(super::campaign::unix_now());
        w.ways.insert(config_id.clone(), way);
        json!({ "config_id": config_id, "qr_code": qr_code })
    };
    super::transfer::deliver(&state, ok(answer)).await
}

async fn list_contact_way(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, LIST_CONTACT_WAY, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let (start, end) = (
        body["start_time"].as_i64().unwrap_or(0),
        body["end_time"].as_i64().unwrap_or(i64::MAX),
    );
    let listed: Vec<Value> = s
        .welcomes
        .ways
        .values()
        .filter(|w| (start..=end).contains(&w["created"].as_i64().unwrap_or(0)))
        .map(|w| json!({ "config_id": w["config_id"] }))
        .collect();
    ok(json!({ "contact_way": listed, "next_cursor": "" }))
}

async fn get_contact_way(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, GET_CONTACT_WAY, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    match s
        .welcomes
        .ways
        .get(body["config_id"].as_str().unwrap_or_default())
    {
        Some(way) => ok(json!({ "contact_way": way })),
        None => errcode(NO_SUCH_CODE, "invalid config_id"),
    }
}

async fn del_contact_way(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, DEL_CONTACT_WAY, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    match s
        .welcomes
        .ways
        .remove(body["config_id"].as_str().unwrap_or_default())
    {
        Some(_) => ok(json!({})),
        None => errcode(NO_SUCH_CODE, "invalid config_id"),
    }
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(SEND_WELCOME, post(send_welcome))
        .route(ADD_CONTACT_WAY, post(add_contact_way))
        .route(LIST_CONTACT_WAY, post(list_contact_way))
        .route(GET_CONTACT_WAY, post(get_contact_way))
        .route(DEL_CONTACT_WAY, post(del_contact_way))
}

impl FakeWecom {
    /// WeCom gives out welcome code `code` now, as it does with a friend-add notice.
    pub fn give_welcome_code(&self, code: &str) {
        let mut s = self.state.lock().unwrap();
        s.welcomes
            .codes
            .insert(code.to_string(), (Instant::now(), false));
    }

    /// Every welcome WeCom accepted: its code, its body, and how long after the code
    /// was given out it arrived.
    pub fn welcomes(&self) -> Vec<(String, Value, Duration)> {
        let s = self.state.lock().unwrap();
        s.welcomes
            .sent
            .iter()
            .map(|(code, body, at)| {
                let given = s.welcomes.codes.get(code).map_or(*at, |(g, _)| *g);
                (code.clone(), body.clone(), at.duration_since(given))
            })
            .collect()
    }

    /// The channel codes WeCom holds, by config id.
    pub fn contact_ways(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().welcomes.ways.clone()
    }

    /// `add_contact_way` refuses codes for `guide` (errcode 40098).
    pub fn refuse_contact_ways_for(&self, guide: &str) {
        let mut s = self.state.lock().unwrap();
        s.welcomes.refused_guides.push(guide.to_string());
    }
}
