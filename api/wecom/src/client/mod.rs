//! WeCom's server API, as far as thin notices need it: the current state of an external
//! contact, a customer group or part of the tag library (docs/adr/0009-wecom-api-reads.md).
//!
//! Every call needs an `access_token` from `GET /cgi-bin/gettoken` (corp id + secret), valid
//! for `expires_in` seconds (7,200) and rate-limited by WeCom, so one is cached per tenant
//! and reused until shortly before it expires. WeCom can invalidate a token early (a
//! secret reset, another process fetching one for the same app); an answer of 40014,
//! 42001 or 40001 drops the cached token, fetches a new one and retries the call once.
//!
//! Every other `errcode` other than 0 is a [`ClientError::Api`]. The processor treats any
//! error as "try later" and bounds the attempts (see [`super::process`]).
//!
//! `directory`: the corp's departments and staff, for the directory sync.

pub mod contact_way;
mod directory;

pub mod mass_message;
pub mod moment;
mod outbound;
pub mod unassigned;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub use directory::{Department, DirectoryUser};
mod import;

pub use import::{ChatListed, ChatPage, ContactPage, FollowInfo, ImportedContact, RATE_LIMITED};

/// Where WeCom's server API lives.
pub const DEFAULT_BASE_URL: &str = "https://qyapi.weixin.qq.com";

/// A token is not used in its last minutes: a call that starts just before expiry would
/// fail with 42001 half-way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// `errcode`s that mean the access token is no longer good: invalid (40014), expired
/// (42001), or the secret behind it no longer matches (40001).
const STALE_TOKEN: [i64; 3] = [40014, 42001, 40001];

/// Why a WeCom API call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection, a timeout, or a broken response: what happened and to which host,
    /// with reqwest's error as the cause (its URL removed: the token URL carries the
    /// secret).
    #[error("WeCom API unreachable: {what}")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP status other than 200.
    #[error("WeCom API answered HTTP {0}")]
    Status(u16),
    /// A 200 whose body is not the documented JSON.
    #[error("WeCom API answer unreadable: {0}")]
    Decode(#[from] serde_json::Error),
    /// WeCom refused the call (`errcode` other than 0).
    #[error("WeCom API error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
}

/// A secret that never shows in `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a tenant's API calls are made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub corp_id: String,
    pub secret: Secret,
    /// `None`: [`ClientSettings::base_url`].
    pub base_url: Option<String>,
}

/// Timeouts and the default base URL for every tenant.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    pub connect_timeout: Duration,
    /// For a whole call, token fetch excluded. The processor waits on it, so it stays
    /// well under a tick.
    pub timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
        }
    }
}

struct CachedToken {
    token: String,
    /// When to stop using it (the expiry less the margin).
    use_until: Instant,
}

/// When a token that WeCom says lives `expires_in` seconds, fetched at `fetched`, stops
/// being used. A lifetime shorter than the margin is used for the call that fetched it only.
fn use_until(fetched: Instant, expires_in: u64) -> Instant {
    fetched + Duration::from_secs(expires_in).saturating_sub(EXPIRY_MARGIN)
}

/// The API client shared by every tenant: one connection pool, one token cache.
#[derive(Clone)]
pub struct WecomApi {
    http: reqwest::Client,
    settings: ClientSettings,
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
    /// One token fetch at a time per cache key: calls sent side by side that each
    /// fetched their own would invalidate one another's tokens (a new token may end
    /// the old one) and answer 42001 on their retry too.
    fetching: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for WecomApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomApi")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for WecomApi {
    fn default() -> Self {
        Self::new(ClientSettings::default())
    }
}

/// One tenant's view of the API.
#[derive(Debug)]
pub struct TenantApi<'a> {
    api: &'a WecomApi,
    credentials: &'a Credentials,
    /// The token cache's key: changes with the corp id, secret or base URL, so a
    /// reconfigured tenant never uses a token of its old app.
    cache_key: String,
}

impl WecomApi {
    pub fn new(settings: ClientSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .build()
            .unwrap_or_default();
        Self {
            http,
            settings,
            tokens: Arc::new(Mutex::new(HashMap::new())),
            fetching: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn for_tenant<'a>(&'a self, tenant: &str, credentials: &'a Credentials) -> TenantApi<'a> {
        let mut hash = Sha256::new();
        for part in [
            tenant,
            &credentials.corp_id,
            credentials.secret.expose(),
            credentials
                .base_url
                .as_deref()
                .unwrap_or(&self.settings.base_url),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        TenantApi {
            api: self,
            credentials,
            cache_key: hex::encode(hash.finalize()),
        }
    }
}

/// Reads `errcode`/`errmsg` and, on 0, the rest as `T`.
fn answer<T: DeserializeOwned>(body: Value) -> Result<T, ClientError> {
    let errcode = body.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if errcode != 0 {
        let errmsg = body
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Err(ClientError::Api { errcode, errmsg });
    }
    Ok(serde_json::from_value(body)?)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

/// Which part of the tag library to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagFilter {
    /// These tags and the groups they are in.
    Tags(Vec<String>),
    /// These groups with all their tags.
    Groups(Vec<String>),
    /// The whole library.
    All,
}

impl TenantApi<'_> {
    fn base(&self) -> &str {
        self.credentials
            .base_url
            .as_deref()
            .unwrap_or(&self.api.settings.base_url)
            .trim_end_matches('/')
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = request.send().await.map_err(transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ClientError::Status(response.status().as_u16()));
        }
        let bytes = response.bytes().await.map_err(transport)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    fn cached(&self) -> Option<String> {
        let tokens = self.api.tokens.lock().ok()?;
        tokens
            .get(&self.cache_key)
            .filter(|t| Instant::now() < t.use_until)
            .map(|t| t.token.clone())
    }

    /// Drops the cached token if it is still `stale`: another call may already have
    /// fetched a fresh one.
    fn forget(&self, stale: &str) {
        if let Ok(mut tokens) = self.api.tokens.lock() {
            if tokens
                .get(&self.cache_key)
                .is_some_and(|t| t.token == stale)
            {
                tokens.remove(&self.cache_key);
            }
        }
    }

    async fn token(&self) -> Result<String, ClientError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let gate = match self.api.fetching.lock() {
            Ok(mut gates) => gates.entry(self.cache_key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let _one_fetch = gate.lock().await;
        // Whoever held the gate before may have fetched it meanwhile.
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let fetched = Instant::now();
        let body = self
            .send(
                self.api
                    .http
                    .get(format!("{}/cgi-bin/gettoken", self.base()))
                    .query(&[
                        ("corpid", self.credentials.corp_id.as_str()),
                        ("corpsecret", self.credentials.secret.expose()),
                    ]),
            )
            .await?;
        let answer: TokenAnswer = answer(body)?;
        if let Ok(mut tokens) = self.api.tokens.lock() {
            tokens.insert(
                self.cache_key.clone(),
                CachedToken {
                    token: answer.access_token.clone(),
                    use_until: use_until(fetched, answer.expires_in),
                },
            );
        }
        Ok(answer.access_token)
    }

    /// One call with a token, and once more with a fresh token if WeCom says the cached
    /// one is stale.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let url = format!("{}{path}", self.base());
            let request = match body {
                Some(body) => self.api.http.post(url).json(body),
                None => self.api.http.get(url),
            }
            .query(&[("access_token", token.as_str())])
            .query(query);
            match answer(self.send(request).await?) {
                Err(ClientError::Api { errcode, .. })
                    if !retried && STALE_TOKEN.contains(&errcode) =>
                {
                    self.forget(&token);
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// `GET /cgi-bin/externalcontact/get`: the customer and every staff member who
    /// follows them, with their remark, description and tags.
    pub async fn external_contact(&self, external_userid: &str) -> Result<Contact, ClientError> {
        self.call(
            "/cgi-bin/externalcontact/get",
            &[("external_userid", external_userid)],
            None,
        )
        .await
    }

    /// `POST /cgi-bin/externalcontact/groupchat/get`: a customer group as it is now.
    pub async fn group_chat(&self, chat_id: &str) -> Result<GroupChat, ClientError> {
        let answer: GroupChatAnswer = self
            .call(
                "/cgi-bin/externalcontact/groupchat/get",
                &[],
                Some(&json!({ "chat_id": chat_id, "need_name": 1 })),
            )
            .await?;
        Ok(answer.group_chat)
    }

    /// `POST /cgi-bin/externalcontact/get_corp_tag_list`: part of the enterprise tag library.
    pub async fn corp_tags(&self, filter: &TagFilter) -> Result<Vec<CorpTagGroup>, ClientError> {
        let body = match filter {
            TagFilter::Tags(ids) => json!({ "tag_id": ids }),
            TagFilter::Groups(ids) => json!({ "group_id": ids }),
            TagFilter::All => json!({}),
        };
        let answer: TagListAnswer = self
            .call(
                "/cgi-bin/externalcontact/get_corp_tag_list",
                &[],
                Some(&body),
            )
            .await?;
        Ok(answer.tag_group)
    }
}

/// A failed request as [`ClientError::Transport`], with no URL anywhere in it.
fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport {
        what: without_url(&e),
        source: e.without_url(),
    }
}

/// reqwest's errors name the URL, and the token URL carries the secret.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken response"
    } else {
        "request failed"
    };
    match e.url().and_then(|u| u.host_str()) {
        Some(host) => format!("{kind} ({host})"),
        None => kind.to_owned(),
    }
}

/// `externalcontact/get`'s answer. Fields the engine does not use are not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub external_contact: ExternalContact,
    #[serde(default)]
    pub follow_user: Vec<FollowUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalContact {
    pub external_userid: String,
    #[serde(default)]
    pub name: String,
    /// 1 a WeChat user, 2 a WeCom user.
    #[serde(default, rename = "type")]
    pub kind: i64,
    /// 0 unknown, 1 male, 2 female.
    #[serde(default)]
    pub gender: i64,
    #[serde(default)]
    pub avatar: String,
}

/// One staff member's relation with the customer, as `externalcontact/get` describes
/// it: `batch/get_by_user`'s relation, with its tags named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUser {
    #[serde(flatten)]
    pub relation: FollowInfo,
    #[serde(default)]
    pub tags: Vec<FollowTag>,
}

/// A tag on a relation: `type` 1 an enterprise tag of the library, 2 the staff
/// member's personal tag, 3 a rule-group tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowTag {
    #[serde(default)]
    pub group_name: String,
    #[serde(default)]
    pub tag_name: String,
    #[serde(default)]
    pub tag_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: i64,
}

impl FollowTag {
    pub const ENTERPRISE: i64 = 1;
}

#[derive(Deserialize)]
struct GroupChatAnswer {
    group_chat: GroupChat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChat {
    pub chat_id: String,
    #[serde(default)]
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub create_time: i64,
    #[serde(default)]
    pub notice: String,
    #[serde(default)]
    pub member_list: Vec<ChatMember>,
}

/// `type` 1 a member of staff, 2 an external contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMember {
    pub userid: String,
    #[serde(rename = "type")]
    pub kind: i64,
    #[serde(default)]
    pub join_time: i64,
    /// 1 invited directly, 2 by link, 3 by QR code.
    #[serde(default)]
    pub join_scene: i64,
}

impl ChatMember {
    pub const STAFF: i64 = 1;
    pub const EXTERNAL: i64 = 2;
}

#[derive(Deserialize)]
struct TagListAnswer {
    #[serde(default)]
    tag_group: Vec<CorpTagGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpTagGroup {
    pub group_id: String,
    pub group_name: String,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub tag: Vec<CorpTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpTag {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_code_is_an_api_error_and_zero_is_the_answer() {
        let refused = answer::<TokenAnswer>(json!({"errcode": 40013, "errmsg": "invalid corpid"}));
        assert!(matches!(
            refused,
            Err(ClientError::Api { errcode: 40013, .. })
        ));
        let ok: TokenAnswer =
            answer(json!({"errcode": 0, "errmsg": "ok", "access_token": "T", "expires_in": 7200}))
                .unwrap();
        assert_eq!((ok.access_token.as_str(), ok.expires_in), ("T", 7200));
        assert!(matches!(
            answer::<TokenAnswer>(json!({"errcode": 0})),
            Err(ClientError::Decode(_))
        ));
    }

    #[test]
    fn a_token_is_used_until_shortly_before_it_expires() {
        let now = Instant::now();
        assert_eq!(use_until(now, 7200), now + Duration::from_secs(6900));
        // Shorter than the margin: never reused.
        assert_eq!(use_until(now, 60), now);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Credentials {
            corp_id: "ww1".into(),
            secret: Secret::new("hunter2"),
            base_url: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn documented_answers_parse() {
        let contact: Contact = answer(json!({
            "errcode": 0, "errmsg": "ok",
            "external_contact": {"external_userid": "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA",
                "name": "李四", "type": 1, "avatar": "http://x", "gender": 1},
            "follow_user": [{"userid": "rocky", "remark": "李部长", "description": "对接采购事务",
                "createtime": 1525779812, "tags": [{"group_name": "标签分组名称",
                "tag_name": "标签名称", "tag_id": "etAJ2GCAAAXtWyujaWJHDDGi0mACHAAA", "type": 1}],
                "remark_corp_name": "腾讯科技", "remark_mobiles": ["13800000001"],
                "oper_userid": "rocky", "add_way": 1, "state": "外联二维码1"}],
            "next_cursor": "NEXT_CURSOR"
        }))
        .unwrap();
        assert_eq!(contact.follow_user[0].tags[0].kind, FollowTag::ENTERPRISE);
        let chat: GroupChatAnswer = answer(json!({
            "errcode": 0, "errmsg": "ok",
            "group_chat": {"chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "name": "销售客服群",
                "owner": "ZhuShengBen", "create_time": 1572505490, "notice": "文明沟通，拒绝脏话",
                "member_list": [{"userid": "abel", "type": 1, "join_time": 1572505491,
                    "join_scene": 1, "invitor": {"userid": "jack"}, "group_nickname": "客服小张",
                    "name": "张三丰"},
                  {"userid": "wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA", "type": 2,
                    "unionid": "ozynqsulJFCZ2z1aYeS8h-nuasdAAA", "join_time": 1572505491,
                    "join_scene": 1, "group_nickname": "顾客老王", "name": "王语嫣"}],
                "admin_list": [{"userid": "sam"}, {"userid": "pony"}],
                "member_version": "71217227bbd112ecfe3a49c482195cb4"}
        }))
        .unwrap();
        assert_eq!(chat.group_chat.member_list[1].kind, ChatMember::EXTERNAL);
        let tags: TagListAnswer = answer(json!({
            "errcode": 0, "errmsg": "ok",
            "tag_group": [{"group_id": "TAG_GROUPID1", "group_name": "GOURP_NAME",
                "create_time": 1557838797, "order": 1, "deleted": false,
                "tag": [{"id": "TAG_ID1", "name": "NAME1", "create_time": 1557838797,
                    "order": 1, "deleted": false}]}]
        }))
        .unwrap();
        assert_eq!(tags.tag_group[0].tag[0].id, "TAG_ID1");
    }
}
