//! A guide's edits as WeCom takes them: `mark_tag` and `remark` change the relation the
//! fake's `externalcontact/get` answers, so a later notice reads WeCom's state with the
//! edit in it. A test can make WeCom refuse a tag.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, strings, Shared};

pub const MARK_TAG: &str = "/cgi-bin/externalcontact/mark_tag";
pub const REMARK: &str = "/cgi-bin/externalcontact/remark";
/// WeCom's "invalid tag id".
pub const INVALID_TAG: i64 = 40068;
const NOT_EXTERNAL_CONTACT: i64 = 84061;

/// The relation of `userid` with the customer in the fake's contact, if WeCom has one.
fn follow<'a>(contacts: &'a mut BTreeMap<String, Value>, body: &Value) -> Option<&'a mut Value> {
    let customer = body["external_userid"].as_str()?;
    let userid = body["userid"].as_str()?;
    contacts
        .get_mut(customer)?
        .get_mut("follow_user")?
        .as_array_mut()?
        .iter_mut()
        .find(|f| f["userid"] == userid)
}

async fn mark_tag(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, MARK_TAG, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    let (add, remove) = (strings(&body, "add_tag"), strings(&body, "remove_tag"));
    if add
        .iter()
        .chain(&remove)
        .any(|t| s.refused_tags.contains(t))
    {
        return errcode(INVALID_TAG, "invalid tagid");
    }
    let Some(relation) = follow(&mut s.contacts, &body) else {
        return errcode(NOT_EXTERNAL_CONTACT, "not external contact");
    };
    let mut tags: Vec<Value> = relation["tags"].as_array().cloned().unwrap_or_default();
    tags.retain(|t| !remove.iter().any(|r| t["tag_id"] == json!(r)));
    for tag in add {
        if !tags.iter().any(|t| t["tag_id"] == json!(tag)) {
            tags.push(json!({ "group_name": "", "tag_name": "", "tag_id": tag, "type": 1 }));
        }
    }
    relation["tags"] = json!(tags);
    ok(json!({}))
}

async fn remark(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, REMARK, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    let Some(relation) = follow(&mut s.contacts, &body) else {
        return errcode(NOT_EXTERNAL_CONTACT, "not external contact");
    };
    for field in ["remark", "description"] {
        if let Some(value) = body.get(field) {
            relation[field] = value.clone();
        }
    }
    ok(json!({}))
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(MARK_TAG, post(mark_tag))
        .route(REMARK, post(remark))
}

impl super::FakeWecom {
    /// `mark_tag` refuses this tag id with [`INVALID_TAG`].
    pub fn refuse_tag(&self, tag: &str) {
        self.state
            .lock()
            .unwrap()
            .refused_tags
            .insert(tag.to_string());
    }

    /// The relation of `userid` with the customer as WeCom holds it now.
    pub fn relation(&self, customer: &str, userid: &str) -> Option<Value> {
        let mut s = self.state.lock().unwrap();
        let body = json!({ "external_userid": customer, "userid": userid });
        follow(&mut s.contacts, &body).cloned()
    }
}
