//! The enterprise Moment APIs (朋友圈): `add_moment_task` starts an asynchronous job that
//! creates a post for the guides to publish, `get_moment_task_result` says how that job
//! ended (the post's id, and the guides it could not reach), and
//! `get_moment_customer_list` lists, guide by guide, the customers a published post
//! reached.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ClientError, TenantApi};

/// `get_moment_customer_list`'s largest page.
pub const MAX_PAGE: usize = 1_000;

/// Where an `add_moment_task` job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MomentTask {
    /// 1 or 2: started, not finished: ask again.
    Running,
    /// 3: the post exists; the guides listed could not be given it.
    Done {
        moment_id: String,
        invalid_senders: Vec<String>,
    },
    /// 3 with a failed result: WeCom's own errcode for the job.
    Failed { errcode: i64, errmsg: String },
}

/// One page of the customers a guide's published post reached, and the next cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MomentCustomerPage {
    pub customers: Vec<String>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    jobid: String,
}

#[derive(Deserialize, Default)]
struct SenderList {
    #[serde(default)]
    user_list: Vec<String>,
}

#[derive(Deserialize)]
struct JobResult {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(default)]
    moment_id: String,
    #[serde(default)]
    invalid_sender_list: SenderList,
}

#[derive(Deserialize)]
struct TaskAnswer {
    status: i64,
    result: Option<JobResult>,
}

#[derive(Deserialize)]
struct Visible {
    external_userid: String,
}

#[derive(Deserialize)]
struct CustomerAnswer {
    #[serde(default)]
    customer_list: Vec<Visible>,
    #[serde(default)]
    next_cursor: String,
}

impl TenantApi<'_> {
    /// `POST /cgi-bin/externalcontact/add_moment_task`: a post of `text` and WeCom-shaped
    /// `attachments` for `senders` to publish, visible to their customers with one of
    /// `tags` (all their customers when empty). Returns the job's id.
    pub async fn add_moment_task(
        &self,
        senders: &[String],
        tags: &[String],
        text: &str,
        attachments: &[Value],
    ) -> Result<String, ClientError> {
        let mut visible = json!({ "sender_list": { "user_list": senders } });
        if !tags.is_empty() {
            visible["external_contact_list"] = json!({ "tag_list": tags });
        }
        let body = json!({
            "text": { "content": text },
            "attachments": attachments,
            "visible_range": visible,
        });
        let created: Created = self
            .call("/cgi-bin/externalcontact/add_moment_task", &[], Some(&body))
            .await?;
        Ok(created.jobid)
    }

    /// `GET /cgi-bin/externalcontact/get_moment_task_result?jobid=`: how job `jobid` stands.
    pub async fn moment_task_result(&self, jobid: &str) -> Result<MomentTask, ClientError> {
        let answer: TaskAnswer = self
            .call(
                "/cgi-bin/externalcontact/get_moment_task_result",
                &[("jobid", jobid)],
                None,
            )
            .await?;
        Ok(match (answer.status, answer.result) {
            (1 | 2, _) => MomentTask::Running,
            (3, Some(r)) if r.errcode == 0 => MomentTask::Done {
                moment_id: r.moment_id,
                invalid_senders: r.invalid_sender_list.user_list,
            },
            (3, Some(r)) => MomentTask::Failed {
                errcode: r.errcode,
                errmsg: r.errmsg,
            },
            (status, _) => {
                let why = format!("moment task status {status} is not documented");
                return Err(ClientError::Decode(serde::de::Error::custom(why)));
            }
        })
    }

    /// `POST /cgi-bin/externalcontact/get_moment_customer_list`: one page of the customers
    /// `sender`'s published post `moment_id` reached, `limit` at most [`MAX_PAGE`].
    pub async fn moment_customers(
        &self,
        moment_id: &str,
        sender: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MomentCustomerPage, ClientError> {
        let body = json!({
            "moment_id": moment_id,
            "userid": sender,
            "cursor": cursor.unwrap_or_default(),
            "limit": limit.clamp(1, MAX_PAGE),
        });
        let answer: CustomerAnswer = self
            .call(
                "/cgi-bin/externalcontact/get_moment_customer_list",
                &[],
                Some(&body),
            )
            .await?;
        Ok(MomentCustomerPage {
            customers: answer
                .customer_list
                .into_iter()
                .map(|c| c.external_userid)
                .collect(),
            next_cursor: (!answer.next_cursor.is_empty()).then_some(answer.next_cursor),
        })
    }
}
