//! The tag library as WeCom takes changes to it: `add_corp_tag` (WeCom names the new
//! tag), `edit_corp_tag` and `del_corp_tag` change what `get_corp_tag_list` answers,
//! with WeCom's refusal of a name already taken in the group.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{errcode, ok, refuse, Shared};

pub const ADD: &str = "/cgi-bin/externalcontact/add_corp_tag";
pub const EDIT: &str = "/cgi-bin/externalcontact/edit_corp_tag";
pub const DELETE: &str = "/cgi-bin/externalcontact/del_corp_tag";
/// WeCom's "tag name already exists".
pub const NAME_TAKEN: i64 = 40071;
const NOT_FOUND: i64 = 40068;

async fn add(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, ADD, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    let group_id = body["group_id"].as_str().unwrap_or_default().to_string();
    let Some(index) = s
        .tag_groups
        .iter()
        .position(|g| g["group_id"] == json!(group_id))
    else {
        return errcode(NOT_FOUND, "invalid group id");
    };
    let names: Vec<String> = body["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let taken = |g: &Value, name: &str| {
        g["tag"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["name"] == json!(name))
    };
    if names.iter().any(|n| taken(&s.tag_groups[index], n)) {
        return errcode(NAME_TAKEN, "tag name exists");
    }
    let mut created = Vec::new();
    for name in names {
        s.tags_created += 1;
        let tag = json!({ "id": format!("etNEW{}", s.tags_created), "name": name,
                          "create_time": 1_767_225_600, "order": 0 });
        s.tag_groups[index]["tag"]
            .as_array_mut()
            .unwrap()
            .push(tag.clone());
        created.push(tag);
    }
    let g = &s.tag_groups[index];
    let group = json!({ "group_id": g["group_id"], "group_name": g["group_name"],
                        "create_time": g["create_time"], "order": g["order"], "tag": created });
    ok(json!({ "tag_group": group }))
}

/// The group and position of tag `id`, if WeCom has it.
fn find(groups: &[Value], id: &str) -> Option<(usize, usize)> {
    groups.iter().enumerate().find_map(|(g, group)| {
        let t = group["tag"]
            .as_array()?
            .iter()
            .position(|t| t["id"] == json!(id))?;
        Some((g, t))
    })
}

async fn edit(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, EDIT, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    let id = body["id"].as_str().unwrap_or_default();
    let Some((g, t)) = find(&s.tag_groups, id) else {
        return errcode(NOT_FOUND, "invalid tag id");
    };
    if let Some(name) = body.get("name") {
        s.tag_groups[g]["tag"][t]["name"] = name.clone();
    }
    ok(json!({}))
}

async fn delete(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(answer) = refuse(&state, DELETE, &query) {
        return answer;
    }
    let mut s = state.lock().unwrap();
    for id in body["tag_id"].as_array().into_iter().flatten() {
        let Some((g, t)) = find(&s.tag_groups, id.as_str().unwrap_or_default()) else {
            return errcode(NOT_FOUND, "invalid tag id");
        };
        s.tag_groups[g]["tag"].as_array_mut().unwrap().remove(t);
    }
    ok(json!({}))
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(ADD, post(add))
        .route(EDIT, post(edit))
        .route(DELETE, post(delete))
}

impl super::FakeWecom {
    /// The tag named `name` in WeCom's library, as `get_corp_tag_list` lists it.
    pub fn library_tag(&self, name: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.tag_groups
            .iter()
            .flat_map(|g| g["tag"].as_array().cloned().unwrap_or_default())
            .find(|t| t["name"] == json!(name))
    }
}
