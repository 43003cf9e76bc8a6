//! The mass-message APIs (群发): `add_msg_template` creates one guide's task, and
//! `get_groupmsg_send_result` says, customer by customer, what became of it. A task is
//! only created by the call: the guide confirms it in the app, and until then its
//! customers are unsent.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ClientError, TenantApi};

/// `add_msg_template` takes at most this many customers per task.
pub const MAX_CUSTOMERS: usize = 10_000;
/// `get_groupmsg_send_result`'s largest page.
pub const MAX_PAGE: usize = 1_000;

/// A created task, and the customers WeCom refused in it (not the guide's friends).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedTask {
    pub msgid: String,
    #[serde(default)]
    pub fail_list: Vec<String>,
}

/// What became of one customer of a task (`status` as WeCom documents it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// 0: not sent yet (the guide has not confirmed the task).
    Unsent,
    /// 1: received.
    Sent,
    /// 2: not sent, the customer is not the guide's friend.
    NotFriend,
    /// 3: not sent, the customer already received a mass message today.
    AlreadyReceived,
}

impl SendStatus {
    fn of(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Unsent,
            1 => Self::Sent,
            2 => Self::NotFriend,
            3 => Self::AlreadyReceived,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub external_userid: String,
    pub userid: String,
    pub status: SendStatus,
    /// When it was received (Unix seconds; 0 unless sent).
    pub send_time: i64,
}

/// One page of a task's results and the cursor of the next (none on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResultPage {
    pub results: Vec<SendResult>,
    pub next_cursor: Option<String>,
}

/// A mass message as `get_groupmsg_list_v2` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTask {
    pub msgid: String,
    pub creator: String,
    /// Unix seconds.
    pub create_time: i64,
    pub text: String,
}

#[derive(Deserialize)]
struct RawListed {
    msgid: String,
    #[serde(default)]
    creator: String,
    /// WeCom documents it as a string of seconds; a number is taken too.
    #[serde(default)]
    create_time: Value,
    #[serde(default)]
    text: Option<RawText>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    group_msg_list: Vec<RawListed>,
    #[serde(default)]
    next_cursor: String,
}

/// `get_groupmsg_list_v2`'s largest page.
pub const MAX_LIST_PAGE: usize = 100;

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    external_userid: String,
    #[serde(default)]
    userid: String,
    status: i64,
    #[serde(default)]
    send_time: i64,
}

#[derive(Deserialize)]
struct ResultAnswer {
    #[serde(default)]
    send_list: Vec<RawResult>,
    #[serde(default)]
    next_cursor: String,
}

impl TenantApi<'_> {
    /// `POST /cgi-bin/externalcontact/add_msg_template`: `sender`'s task to `customers`
    /// (at most [`MAX_CUSTOMERS`]), with `text` and WeCom-shaped `attachments`.
    pub async fn add_msg_template(
        &self,
        sender: &str,
        customers: &[String],
        text: &str,
        attachments: &[Value],
    ) -> Result<CreatedTask, ClientError> {
        let body = json!({
            "chat_type": "single",
            "sender": sender,
            "external_userid": customers,
            "text": { "content": text },
            "attachments": attachments,
        });
        self.call(
            "/cgi-bin/externalcontact/add_msg_template",
            &[],
            Some(&body),
        )
        .await
    }

    /// `POST /cgi-bin/externalcontact/get_groupmsg_send_result`: one page of `sender`'s
    /// results for task `msgid`, `limit` at most [`MAX_PAGE`]. A status WeCom adds later
    /// is an error, not a guess.
    pub async fn groupmsg_send_result(
        &self,
        msgid: &str,
        sender: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SendResultPage, ClientError> {
        let body = json!({
            "msgid": msgid,
            "userid": sender,
            "limit": limit.clamp(1, MAX_PAGE),
            "cursor": cursor.unwrap_or_default(),
        });
        let answer: ResultAnswer = self
            .call(
                "/cgi-bin/externalcontact/get_groupmsg_send_result",
                &[],
                Some(&body),
            )
            .await?;
        let results = answer
            .send_list
            .into_iter()
            .map(|r| {
                let status = SendStatus::of(r.status).ok_or_else(|| {
                    let why = format!("send status {} is not documented", r.status);
                    ClientError::Decode(serde::de::Error::custom(why))
                })?;
                Ok(SendResult {
                    external_userid: r.external_userid,
                    userid: r.userid,
                    status,
                    send_time: r.send_time,
                })
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(SendResultPage {
            results,
            next_cursor: (!answer.next_cursor.is_empty()).then_some(answer.next_cursor),
        })
    }

    /// `POST /cgi-bin/externalcontact/get_groupmsg_list_v2`: the one-to-one mass
    /// messages `creator` created between `start` and `end` (Unix seconds), every page.
    /// How a task whose creation answer was lost is found again.
    pub async fn groupmsg_list(
        &self,
        creator: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<ListedTask>, ClientError> {
        let mut listed = Vec::new();
        let mut cursor = String::new();
        // WeCom pages at most 100; a guide creates a handful of tasks a day.
        for _ in 0..100 {
            let body = json!({
                "chat_type": "single",
                "start_time": start,
                "end_time": end,
                "creator": creator,
                "filter_type": 2,
                "limit": MAX_LIST_PAGE,
                "cursor": cursor,
            });
            let answer: ListAnswer = self
                .call(
                    "/cgi-bin/externalcontact/get_groupmsg_list_v2",
                    &[],
                    Some(&body),
                )
                .await?;
            listed.extend(answer.group_msg_list.into_iter().map(|t| ListedTask {
                create_time: match &t.create_time {
                    Value::String(s) => s.parse().unwrap_or(0),
                    v => v.as_i64().unwrap_or(0),
                },
                msgid: t.msgid,
                creator: t.creator,
                text: t.text.map(|t| t.content).unwrap_or_default(),
            }));
            if answer.next_cursor.is_empty() {
                break;
            }
            cursor = answer.next_cursor;
        }
        Ok(listed)
    }
}
