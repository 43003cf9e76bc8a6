//! The reads the first import pages through (issue 16): the staff who have customers,
//! each staff member's customers with their relation, and the customer groups. Each
//! answers one page and the cursor of the next, so the import never holds more than a
//! page.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ClientError, ExternalContact, TenantApi};

/// `errcode`s that mean "too many calls, slow down": the API's frequency (45009), an
/// app's minute quota (45011) and calls running at once (45033).
pub const RATE_LIMITED: [i64; 3] = [45009, 45011, 45033];

impl ClientError {
    /// Whether WeCom asked to slow down, rather than refused the call.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Self::Api { errcode, .. } if RATE_LIMITED.contains(errcode))
    }

    /// Whether trying again later can succeed: a slow-down, the network, a gateway.
    pub fn is_transient(&self) -> bool {
        self.is_rate_limit() || matches!(self, Self::Transport { .. } | Self::Status(_))
    }
}

#[derive(Deserialize)]
struct FollowUserList {
    #[serde(default)]
    follow_user: Vec<String>,
}

/// One customer and one relation, as `batch/get_by_user` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedContact {
    pub external_contact: ExternalContact,
    pub follow_info: FollowInfo,
}

/// A relation in `batch/get_by_user`: its tags are ids only (`externalcontact/get`
/// names them instead, see [`super::FollowUser`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowInfo {
    pub userid: String,
    #[serde(default)]
    pub remark: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub createtime: i64,
    #[serde(default)]
    pub tag_id: Vec<String>,
    #[serde(default)]
    pub add_way: Option<i64>,
    #[serde(default)]
    pub state: Option<String>,
}

/// One page of `batch/get_by_user`; an empty `next_cursor` is the last page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactPage {
    #[serde(default)]
    pub external_contact_list: Vec<ImportedContact>,
    #[serde(default)]
    pub next_cursor: String,
}

/// A group as `groupchat/list` names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatListed {
    pub chat_id: String,
    /// 0 normal, 1-3 a handover in some state.
    #[serde(default)]
    pub status: i64,
}

/// One page of `groupchat/list`; an empty `next_cursor` is the last page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatPage {
    #[serde(default)]
    pub group_chat_list: Vec<ChatListed>,
    #[serde(default)]
    pub next_cursor: String,
}

impl TenantApi<'_> {
    /// `GET /cgi-bin/externalcontact/get_follow_user_list`: the staff allowed to have
    /// customers.
    pub async fn follow_users(&self) -> Result<Vec<String>, ClientError> {
        let answer: FollowUserList = self
            .call("/cgi-bin/externalcontact/get_follow_user_list", &[], None)
            .await?;
        Ok(answer.follow_user)
    }

    /// `POST /cgi-bin/externalcontact/batch/get_by_user`: a page of the customers of
    /// `staff` (at most 100 ids), at most `limit` (at most 100) relations.
    pub async fn contacts_by_user(
        &self,
        staff: &[String],
        cursor: &str,
        limit: u32,
    ) -> Result<ContactPage, ClientError> {
        self.call(
            "/cgi-bin/externalcontact/batch/get_by_user",
            &[],
            Some(&json!({ "userid_list": staff, "cursor": cursor, "limit": limit })),
        )
        .await
    }

    /// `POST /cgi-bin/externalcontact/groupchat/list`: a page of every customer group
    /// (`status_filter` 0: all, handovers included), at most `limit` (at most 1,000).
    pub async fn group_chats(&self, cursor: &str, limit: u32) -> Result<ChatPage, ClientError> {
        self.call(
            "/cgi-bin/externalcontact/groupchat/list",
            &[],
            Some(&json!({ "status_filter": 0, "cursor": cursor, "limit": limit })),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::answer;
    use super::*;

    fn documented(name: &str) -> Value {
        let path = format!(
            "{}/../../../shared/wecom/rest/{name}.response.json",
            env!("CARGO_MANIFEST_DIR")
        );
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            // Outside this machine's shared folder: the documented example, copied.
            Err(_) => match name {
                "batch_get_by_user" => json!({"errcode": 0, "errmsg": "ok",
                    "external_contact_list": [{"external_contact": {
                        "external_userid": "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA", "name": "李四",
                        "type": 2, "gender": 1, "avatar": "http://p.qlogo.cn/x/0"},
                      "follow_info": {"userid": "rocky", "remark": "李部长",
                        "description": "对接采购事务", "createtime": 1525779812,
                        "tag_id": ["etAJ2GCAAAXtWyujaWJHDDGi0mACHAAA"], "add_way": 1}}],
                    "next_cursor": "r9FqSqsI8fgNbHLHE5QoCP50UIg2cFQbfma3l2QsmwI"}),
                _ => json!({"errcode": 0, "errmsg": "ok",
                    "group_chat_list": [{"chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "status": 0}],
                    "next_cursor": "tJzlB9tdqfh-g7i_J-ehOz_TWcd7dSKa39_AqCIeMFw"}),
            },
        }
    }

    #[test]
    fn the_documented_pages_parse() {
        let page: ContactPage = answer(documented("batch_get_by_user")).unwrap();
        let first = &page.external_contact_list[0];
        assert_eq!(first.external_contact.name, "李四");
        assert_eq!(first.external_contact.gender, 1);
        assert_eq!(first.follow_info.createtime, 1525779812);
        assert_eq!(first.follow_info.add_way, Some(1));
        assert!(!page.next_cursor.is_empty());
        let chats: ChatPage = answer(documented("groupchat_list")).unwrap();
        assert_eq!(
            chats.group_chat_list[0].chat_id,
            "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
        );
        let staff: FollowUserList =
            answer(json!({"errcode": 0, "errmsg": "ok", "follow_user": ["zhangsan", "lisi"]}))
                .unwrap();
        assert_eq!(staff.follow_user, ["zhangsan", "lisi"]);
    }

    #[test]
    fn a_slow_down_is_transient_and_a_refusal_is_not() {
        let api = |errcode| ClientError::Api {
            errcode,
            errmsg: String::new(),
        };
        assert!(api(45009).is_rate_limit() && api(45033).is_transient());
        assert!(ClientError::Status(502).is_transient());
        assert!(!api(40001).is_transient() && !api(60011).is_rate_limit());
    }
}
