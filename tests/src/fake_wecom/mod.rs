//! A stand-in for WeCom's server API on 127.0.0.1:0: `gettoken`, the three reads the
//! callback processor makes, and the handover calls (`transfer`), a guide's edits (`writes`), answered from maps the
//! test fills, with every call counted. It can fail (HTTP 500 or an `errcode`) and
//! expire its token, as WeCom does.

pub mod campaign;
pub mod library;
pub mod transfer;
pub mod welcome;
pub mod writes;

mod directory;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub mod import;

pub use import::{Corp, Scheduled};

pub const CORP_SECRET: &str = "fake-corp-secret-0123456789";

pub const GETTOKEN: &str = "/cgi-bin/gettoken";
pub const CONTACT: &str = "/cgi-bin/externalcontact/get";
pub const GROUP_CHAT: &str = "/cgi-bin/externalcontact/groupchat/get";
pub const TAG_LIST: &str = "/cgi-bin/externalcontact/get_corp_tag_list";
pub use directory::{DEPARTMENT_LIST, USER_LIST};

/// How the reads (not `gettoken`) fail while failing is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 with an HTML body, as a broken gateway answers.
    Status500,
    /// HTTP 200 with this `errcode`.
    Errcode(i64),
}

#[derive(Debug, Default)]
struct Fake {
    corp_id: String,
    contacts: BTreeMap<String, Value>,
    chats: BTreeMap<String, Value>,
    tag_groups: Vec<Value>,
    directory: directory::Directory,
    calls: BTreeMap<String, usize>,
    tokens_issued: usize,
    /// The token reads accept; `None` until one is issued.
    valid: Option<String>,
    failure: Option<Failure>,
    transfers: transfer::Transfers,
    refused_tags: std::collections::BTreeSet<String>,
    tags_created: usize,
    import: import::ImportState,
    mass_messages: campaign::MassMessages,
    welcomes: welcome::Welcomes,
}

/// A running fake, stopped when dropped.
#[derive(Debug)]
pub struct FakeWecom {
    pub base: String,
    state: Arc<Mutex<Fake>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWecom {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<Fake>>;

/// The strings of a list field of a request body.
fn strings(body: &Value, field: &str) -> Vec<String> {
    body[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn errcode(code: i64, msg: &str) -> Response {
    Json(json!({ "errcode": code, "errmsg": msg })).into_response()
}

fn ok(mut body: Value) -> Response {
    body["errcode"] = json!(0);
    body["errmsg"] = json!("ok");
    Json(body).into_response()
}

/// Counts the call, then says whether it may go on (`None`): a failure or a bad token
/// answers instead.
fn refuse(state: &Shared, path: &str, query: &BTreeMap<String, String>) -> Option<Response> {
    let mut s = state.lock().unwrap();
    *s.calls.entry(path.to_string()).or_default() += 1;
    match s.failure {
        Some(Failure::Status500) => {
            return Some(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<html>bad gateway</html>",
                )
                    .into_response(),
            )
        }
        Some(Failure::Errcode(code)) => return Some(errcode(code, "system busy")),
        None => {}
    }
    match (query.get("access_token"), &s.valid) {
        (Some(token), Some(valid)) if token == valid => None,
        (Some(token), _) if token.starts_with("TOKEN-") => {
            Some(errcode(42001, "access_token expired"))
        }
        _ => Some(errcode(40014, "invalid access_token")),
    }
}

async fn gettoken(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    *s.calls.entry(GETTOKEN.to_string()).or_default() += 1;
    if query.get("corpid") != Some(&s.corp_id) {
        return errcode(40013, "invalid corpid");
    }
    if query.get("corpsecret").map(String::as_str) != Some(CORP_SECRET) {
        return errcode(40001, "invalid credential");
    }
    s.tokens_issued += 1;
    let token = format!("TOKEN-{}", s.tokens_issued);
    s.valid = Some(token.clone());
    ok(json!({ "access_token": token, "expires_in": 7200 }))
}

async fn contact(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(answer) = refuse(&state, CONTACT, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    match query
        .get("external_userid")
        .and_then(|id| s.contacts.get(id))
    {
        Some(body) => ok(body.clone()),
        None => errcode(84061, "not external contact"),
    }
}

async fn group_chat(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, GROUP_CHAT, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    match body["chat_id"].as_str().and_then(|id| s.chats.get(id)) {
        Some(chat) => ok(json!({ "group_chat": chat })),
        None => errcode(701008, "chat not exist"),
    }
}

async fn tag_list(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, TAG_LIST, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let (groups, tags) = (strings(&body, "group_id"), strings(&body, "tag_id"));
    // As documented: group_id wins over tag_id; with neither, the whole library.
    let answer: Vec<Value> = if !groups.is_empty() {
        s.tag_groups
            .iter()
            .filter(|g| groups.iter().any(|id| g["group_id"] == json!(id)))
            .cloned()
            .collect()
    } else if !tags.is_empty() {
        s.tag_groups
            .iter()
            .filter_map(|g| {
                let listed: Vec<Value> = g["tag"]
                    .as_array()?
                    .iter()
                    .filter(|t| tags.iter().any(|id| t["id"] == json!(id)))
                    .cloned()
                    .collect();
                let mut g = g.clone();
                g["tag"] = json!(listed);
                (!listed.is_empty()).then_some(g)
            })
            .collect()
    } else {
        s.tag_groups.clone()
    };
    ok(json!({ "tag_group": answer }))
}

impl FakeWecom {
    /// A fake for `corp_id`, accepting [`CORP_SECRET`].
    pub async fn start(corp_id: &str) -> Self {
        let state: Shared = Arc::new(Mutex::new(Fake {
            corp_id: corp_id.to_string(),
            ..Fake::default()
        }));
        let app = Router::new()
            .route(GETTOKEN, get(gettoken))
            .route(CONTACT, get(contact))
            .route(GROUP_CHAT, post(group_chat))
            .route(TAG_LIST, post(tag_list))
            .merge(transfer::routes())
            .merge(writes::routes())
            .merge(library::routes())
            .merge(directory::routes())
            .merge(import::routes())
            .merge(campaign::routes())
            .merge(welcome::routes())
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            state,
            server,
        }
    }

    /// What `externalcontact/get` answers for `external_userid` (without errcode).
    pub fn set_contact(&self, external_userid: &str, answer: Value) {
        let mut s = self.state.lock().unwrap();
        s.contacts.insert(external_userid.to_string(), answer);
    }

    /// What `groupchat/get` answers for the chat (the `group_chat` object).
    pub fn set_chat(&self, chat: Value) {
        let mut s = self.state.lock().unwrap();
        let id = chat["chat_id"].as_str().unwrap().to_string();
        s.chats.insert(id, chat);
    }

    /// The whole tag library (`tag_group` entries).
    pub fn set_tags(&self, tag_groups: Value) {
        let mut s = self.state.lock().unwrap();
        s.tag_groups = tag_groups.as_array().unwrap().clone();
    }

    /// The corp's departments (`department/list` entries: id, name, parentid, order).
    pub fn set_departments(&self, departments: Value) {
        let mut s = self.state.lock().unwrap();
        s.directory.departments = departments.as_array().unwrap().clone();
    }

    /// The corp's staff (`user/list` entries: userid, name, department, main_department,
    /// position, status).
    pub fn set_users(&self, users: Value) {
        let mut s = self.state.lock().unwrap();
        s.directory.users = users.as_array().unwrap().clone();
    }

    /// A generated corp for the first import: its staff, customers and groups, and its
    /// tag library and group chats as `get_corp_tag_list` and `groupchat/get` answer.
    pub fn set_corp(&self, corp: Corp) {
        let mut s = self.state.lock().unwrap();
        s.tag_groups = corp.tag_groups().as_array().unwrap().clone();
        for g in 0..corp.groups {
            s.chats.insert(Corp::chat_id(g), corp.chat(g));
        }
        s.import.corp = Some(corp);
    }

    /// Makes calls to an import path fail by number (see [`Scheduled`]).
    pub fn schedule(&self, failure: Scheduled) {
        self.state.lock().unwrap().import.scheduled.push(failure);
    }

    pub fn fail(&self, failure: Option<Failure>) {
        self.state.lock().unwrap().failure = failure;
    }

    /// WeCom invalidates the current token early: the next read answers 42001.
    pub fn expire_token(&self) {
        let mut s = self.state.lock().unwrap();
        s.valid = Some("TOKEN-expired-by-the-test".into());
    }

    /// Calls to `path` so far, failed ones included.
    pub fn calls(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Points `tenant`'s WeCom callback (with `token` and `aes_key`) and its API at this
    /// fake, with the secret it accepts: the tenant then acts in WeCom.
    pub async fn connect(
        &self,
        db: &engine::db::Database,
        tenant: &domain::values::TenantId,
        token: &str,
        aes_key: &str,
    ) {
        let corp = self.state.lock().unwrap().corp_id.clone();
        wecom::inbox::configure_all(
            db,
            tenant,
            &wecom::inbox::Setup {
                token: token.into(),
                encoding_aes_key: aes_key.into(),
                receive_id: corp.clone(),
                corp_id: Some(corp),
                corp_secret: Some(wecom::client::Secret::new(CORP_SECRET)),
                api_base_url: Some(self.base.clone()),
            },
        )
        .await
        .unwrap();
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens_issued
    }
}
