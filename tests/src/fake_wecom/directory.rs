//! The fake's corp directory: `department/list` and `user/list`, answered from the
//! departments and users a test sets, with WeCom's documented shapes and errors.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{errcode, ok, refuse, Shared};

pub const DEPARTMENT_LIST: &str = "/cgi-bin/department/list";
pub const USER_LIST: &str = "/cgi-bin/user/list";

/// The departments (`department/list` entries) and users (`user/list` entries).
#[derive(Debug, Default)]
pub(super) struct Directory {
    pub departments: Vec<Value>,
    pub users: Vec<Value>,
}

impl Directory {
    /// `id` and every department below it.
    fn subtree(&self, id: i64) -> BTreeSet<i64> {
        let mut found = BTreeSet::from([id]);
        loop {
            let before = found.len();
            for d in &self.departments {
                if found.contains(&d["parentid"].as_i64().unwrap_or(0)) {
                    found.insert(d["id"].as_i64().unwrap_or(0));
                }
            }
            if found.len() == before {
                return found;
            }
        }
    }

    fn exists(&self, id: i64) -> bool {
        self.departments.iter().any(|d| d["id"] == json!(id))
    }
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(DEPARTMENT_LIST, get(department_list))
        .route(USER_LIST, get(user_list))
}

fn number(query: &BTreeMap<String, String>, name: &str) -> Option<i64> {
    query.get(name).and_then(|v| v.parse().ok())
}

async fn department_list(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(answer) = refuse(&state, DEPARTMENT_LIST, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let directory = &s.directory;
    let listed: Vec<Value> = match number(&query, "id") {
        Some(id) if !directory.exists(id) => return errcode(60123, "invalid party id"),
        Some(id) => {
            let below = directory.subtree(id);
            directory
                .departments
                .iter()
                .filter(|d| below.contains(&d["id"].as_i64().unwrap_or(0)))
                .cloned()
                .collect()
        }
        None => directory.departments.clone(),
    };
    ok(json!({ "department": listed }))
}

async fn user_list(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(answer) = refuse(&state, USER_LIST, &query) {
        return answer;
    }
    let s = state.lock().unwrap();
    let directory = &s.directory;
    let Some(department) = number(&query, "department_id") else {
        return errcode(40058, "department_id is required");
    };
    if !directory.exists(department) {
        return errcode(60123, "invalid party id");
    }
    let within = if number(&query, "fetch_child") == Some(1) {
        directory.subtree(department)
    } else {
        BTreeSet::from([department])
    };
    let listed: Vec<Value> = directory
        .users
        .iter()
        .filter(|u| {
            u["department"]
                .as_array()
                .is_some_and(|ds| ds.iter().any(|d| within.contains(&d.as_i64().unwrap_or(0))))
        })
        .cloned()
        .collect();
    ok(json!({ "userlist": listed }))
}
