//! What the first import reads from WeCom (issue 16): the staff with customers, each
//! staff member's customers page by page, and the customer groups, answered from a
//! generated corp ([`Corp`]) that builds each page when it is asked for, so a corp of a
//! million customers costs no memory. Cursors page for real, page sizes above WeCom's
//! are refused (40058), and calls can be made to fail by number ([`Scheduled`]).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, Failure, Shared};

pub const FOLLOW_USERS: &str = "/cgi-bin/externalcontact/get_follow_user_list";
pub const BY_USER: &str = "/cgi-bin/externalcontact/batch/get_by_user";
pub const CHAT_LIST: &str = "/cgi-bin/externalcontact/groupchat/list";

/// 2024-01-01T00:00:00Z: the generated relations are added from here on.
pub const EPOCH: i64 = 1_704_067_200;

/// Tag ids of the generated library: two groups of three.
pub const TAGS: [&str; 6] = ["etimp0", "etimp1", "etimp2", "etimp3", "etimp4", "etimp5"];

/// A rule-group tag some relations carry: WeCom lists it, the library has no such tag.
pub const RULE_TAG: &str = "stimprule";

/// A generated corp: `staff` guides share `customers` evenly (in order), every
/// `shared_every`-th customer of a guide also follows the next guide, and `groups`
/// groups each hold their owner and up to `members_per_group` of the owner's customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corp {
    pub staff: usize,
    pub customers: usize,
    /// 0: no customer follows two guides.
    pub shared_every: usize,
    pub groups: usize,
    pub members_per_group: usize,
}

/// One relation: the customer's number and whether it is the second guide's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    pub customer: usize,
    pub shared: bool,
}

impl Corp {
    pub fn staff_id(i: usize) -> String {
        format!("guide{i:05}")
    }

    pub fn customer_id(k: usize) -> String {
        format!("wmimp{k:08}")
    }

    pub fn chat_id(g: usize) -> String {
        format!("wrimp{g:06}")
    }

    fn per_staff(&self) -> usize {
        self.customers.div_ceil(self.staff.max(1))
    }

    /// The customers guide `i` added first.
    fn own(&self, i: usize) -> std::ops::Range<usize> {
        let start = (i * self.per_staff()).min(self.customers);
        start..((i + 1) * self.per_staff()).min(self.customers)
    }

    fn shared_of(&self, i: usize) -> usize {
        match self.shared_every {
            0 => 0,
            every => self.own(i).len().div_ceil(every),
        }
    }

    /// The guide before `i`, whose shared customers `i` follows too.
    fn previous(&self, i: usize) -> usize {
        (i + self.staff - 1) % self.staff
    }

    /// How many relations guide `i` has.
    pub fn relations_of(&self, i: usize) -> usize {
        let shared = if self.staff > 1 {
            self.shared_of(self.previous(i))
        } else {
            0
        };
        self.own(i).len() + shared
    }

    /// Guide `i`'s `n`-th relation: their own customers first, then the shared ones.
    pub fn relation(&self, i: usize, n: usize) -> Relation {
        let own = self.own(i);
        if n < own.len() {
            return Relation {
                customer: own.start + n,
                shared: false,
            };
        }
        let previous = self.own(self.previous(i));
        Relation {
            customer: previous.start + (n - own.len()) * self.shared_every,
            shared: true,
        }
    }

    pub fn total_relations(&self) -> usize {
        (0..self.staff).map(|i| self.relations_of(i)).sum()
    }

    /// When guide `i` added the relation: WeCom's `createtime`.
    pub fn createtime(r: Relation) -> i64 {
        EPOCH + r.customer as i64 * 37 + if r.shared { 30 * 86_400 } else { 0 }
    }

    pub fn name(k: usize) -> String {
        format!("客户{k}")
    }

    /// The enterprise tags a relation carries (WeCom may also list a rule-group tag).
    pub fn tags(k: usize) -> Vec<&'static str> {
        let mut tags = vec![TAGS[k % 6]];
        if k % 5 == 0 {
            tags.push(TAGS[(k + 1) % 6]);
        }
        tags
    }

    pub fn remark(k: usize) -> String {
        if k % 4 == 0 {
            format!("VIP{}", k % 100)
        } else {
            String::new()
        }
    }

    /// One `external_contact_list` entry, as `batch/get_by_user` answers it.
    pub fn contact(&self, i: usize, r: Relation) -> Value {
        let k = r.customer;
        let mut tag_id: Vec<&str> = Self::tags(k);
        if k % 7 == 0 {
            tag_id.push(RULE_TAG);
        }
        let add_way = [1, 2, 3, 4, 202][k % 5];
        let mut follow = json!({
            "userid": Self::staff_id(i),
            "remark": Self::remark(k),
            "description": if k % 8 == 0 { "likes gold" } else { "" },
            "createtime": Self::createtime(r),
            "tag_id": tag_id,
            "oper_userid": Self::staff_id(i),
            "add_way": add_way,
        });
        if k % 3 == 0 {
            follow["state"] = json!(format!("store-{}", k % 10));
        }
        json!({
            "external_contact": {
                "external_userid": Self::customer_id(k),
                "name": Self::name(k),
                "avatar": format!("http://wework.qpic.cn/imp/{k}/0"),
                "type": 1,
                "gender": k % 3,
                "unionid": format!("ozimp{k}"),
            },
            "follow_info": follow,
        })
    }

    /// The library, as `get_corp_tag_list` answers it (`tag_group`).
    pub fn tag_groups(&self) -> Value {
        let group = |g: usize| {
            json!({
                "group_id": format!("egimp{g}"),
                "group_name": format!("Group {g}"),
                "create_time": EPOCH,
                "order": g,
                "deleted": false,
                "tag": (0..3).map(|t| json!({
                    "id": TAGS[g * 3 + t],
                    "name": format!("Tag {}", g * 3 + t),
                    "create_time": EPOCH,
                    "order": t,
                    "deleted": false,
                })).collect::<Vec<_>>(),
            })
        };
        json!([group(0), group(1)])
    }

    /// Group `g`, as `groupchat/get` answers it (`group_chat`).
    pub fn chat(&self, g: usize) -> Value {
        let owner = g % self.staff;
        let created = EPOCH + g as i64 * 100;
        let mut members = vec![json!({
            "userid": Self::staff_id(owner), "type": 1, "join_time": created, "join_scene": 1,
        })];
        for k in self.own(owner).take(self.members_per_group) {
            members.push(json!({
                "userid": Self::customer_id(k),
                "type": 2,
                "unionid": format!("ozimp{k}"),
                "join_time": created + 60 + k as i64,
                "join_scene": 1 + k % 3,
                "invitor": { "userid": Self::staff_id(owner) },
            }));
        }
        json!({
            "chat_id": Self::chat_id(g),
            "name": format!("VIP 群 {g}"),
            "owner": Self::staff_id(owner),
            "create_time": created,
            "notice": if g % 2 == 0 { "欢迎" } else { "" },
            "member_list": members,
            "admin_list": [],
            "member_version": format!("v{g}"),
        })
    }
}

/// Calls `from..from + count` (numbered from 1) to `path` fail with `failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub path: &'static str,
    pub from: usize,
    pub count: usize,
    pub failure: Failure,
}

/// The import's part of the fake.
#[derive(Debug, Default)]
pub(super) struct ImportState {
    pub(super) corp: Option<Corp>,
    pub(super) scheduled: Vec<Scheduled>,
    /// Calls per path that passed the token check.
    calls: BTreeMap<&'static str, usize>,
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(FOLLOW_USERS, get(follow_users))
        .route(BY_USER, post(by_user))
        .route(CHAT_LIST, post(chat_list))
}

/// As [`refuse`], then a scheduled failure of this call, if any.
fn refuse_import(
    state: &Shared,
    path: &'static str,
    query: &BTreeMap<String, String>,
) -> Option<Response> {
    if let Some(answer) = refuse(state, path, query) {
        return Some(answer);
    }
    let mut s = state.lock().unwrap();
    let n = {
        let calls = s.import.calls.entry(path).or_default();
        *calls += 1;
        *calls
    };
    let failure = s
        .import
        .scheduled
        .iter()
        .find(|f| f.path == path && (f.from..f.from + f.count).contains(&n))?
        .failure;
    Some(match failure {
        Failure::Status500 => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "<html>bad gateway</html>",
        )
            .into_response(),
        Failure::Errcode(code) => errcode(code, "api freq out of limit"),
    })
}

fn corp(state: &Shared) -> Option<Corp> {
    state.lock().unwrap().import.corp
}

fn invalid(what: &str) -> Response {
    errcode(40058, what)
}

async fn follow_users(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(answer) = refuse_import(&state, FOLLOW_USERS, &query) {
        return answer;
    }
    let staff: Vec<String> = corp(&state)
        .map(|c| (0..c.staff).map(Corp::staff_id).collect())
        .unwrap_or_default();
    ok(json!({ "follow_user": staff }))
}

/// The cursor `{index in userid_list}-{relation of that guide}`.
fn parse_cursor(cursor: &str) -> Option<(usize, usize)> {
    if cursor.is_empty() {
        return Some((0, 0));
    }
    let (a, b) = cursor.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn staff_index(corp: &Corp, userid: &str) -> Option<usize> {
    let i: usize = userid.strip_prefix("guide")?.parse().ok()?;
    (i < corp.staff).then_some(i)
}

async fn by_user(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse_import(&state, BY_USER, &query) {
        return answer;
    }
    let Some(corp) = corp(&state) else {
        return ok(json!({ "external_contact_list": [], "next_cursor": "" }));
    };
    let users: Vec<&str> = body["userid_list"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let limit = body["limit"].as_u64().unwrap_or(50) as usize;
    if users.is_empty() || users.len() > 100 {
        return invalid("userid_list must hold 1 to 100 ids");
    }
    if limit == 0 || limit > 100 {
        return invalid("limit must be 1 to 100");
    }
    let Some((mut at, mut n)) = parse_cursor(body["cursor"].as_str().unwrap_or("")) else {
        return invalid("invalid cursor");
    };
    let mut list = Vec::with_capacity(limit);
    while at < users.len() && list.len() < limit {
        match staff_index(&corp, users[at]) {
            Some(i) if n < corp.relations_of(i) => {
                list.push(corp.contact(i, corp.relation(i, n)));
                n += 1;
            }
            _ => {
                at += 1;
                n = 0;
            }
        }
    }
    // Past guides with nothing left, so the last page says it is the last.
    while at < users.len()
        && staff_index(&corp, users[at]).is_none_or(|i| n >= corp.relations_of(i))
    {
        at += 1;
        n = 0;
    }
    let next = if at < users.len() {
        format!("{at}-{n}")
    } else {
        String::new()
    };
    ok(json!({ "external_contact_list": list, "next_cursor": next }))
}

async fn chat_list(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse_import(&state, CHAT_LIST, &query) {
        return answer;
    }
    let groups = corp(&state).map_or(0, |c| c.groups);
    let limit = body["limit"].as_u64().unwrap_or(100) as usize;
    if limit == 0 || limit > 1000 {
        return invalid("limit must be 1 to 1000");
    }
    let cursor = body["cursor"].as_str().unwrap_or("");
    let Ok(from) = (if cursor.is_empty() {
        Ok(0)
    } else {
        cursor.parse::<usize>()
    }) else {
        return invalid("invalid cursor");
    };
    let to = (from + limit).min(groups);
    let list: Vec<Value> = (from..to)
        .map(|g| json!({ "chat_id": Corp::chat_id(g), "status": 0 }))
        .collect();
    let next = if to < groups {
        to.to_string()
    } else {
        String::new()
    };
    ok(json!({ "group_chat_list": list, "next_cursor": next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_customer_is_someones_and_shared_ones_follow_the_next_guide() {
        let corp = Corp {
            staff: 3,
            customers: 10,
            shared_every: 2,
            groups: 0,
            members_per_group: 0,
        };
        // Own: 4, 4, 2; shared: ceil(4/2)=2 of guide 0 go to 1, 2 of 1 to 2, 1 of 2 to 0.
        assert_eq!(
            (0..3).map(|i| corp.relations_of(i)).collect::<Vec<_>>(),
            [5, 6, 4]
        );
        assert_eq!(corp.total_relations(), 15);
        assert_eq!(
            corp.relation(1, 5),
            Relation {
                customer: 2,
                shared: true
            }
        );
        assert_eq!(
            corp.relation(0, 4),
            Relation {
                customer: 8,
                shared: true
            }
        );
    }
}
