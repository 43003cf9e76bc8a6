//! A departed guide's book on a live server, and the calls that hand it over: shared by
//! the handover suite and the subscription suite.

use std::time::Duration;

use chrono::Utc;
use engine::auth::Role;
use fixtures::departure::{self, DepartureScenario};
use serde_json::{json, Value};
use server::seed;
use server::serve::ServerSettings;
use uuid::Uuid;

use crate::ids::tenant;
use crate::live::{token, TestApi};
use crate::TestDb;

pub const T: &str = "dep";
pub const SUCCESSORS: u32 = 3;

pub fn scenario(customers: u64, groups: u32) -> DepartureScenario {
    DepartureScenario {
        tenant: tenant(T),
        epoch: Utc::now() - chrono::Duration::days(30),
        customers,
        groups,
        members_per_group: 2,
        successors: SUCCESSORS,
        successor_limit: domain::rules::MAX_CUSTOMER_LIMIT,
        profiles: false,
    }
}

/// A server on `db` with the departure scenario loaded and its read models caught up,
/// ticking every 100 ms so tests that move the clock need not wait.
pub async fn world_on(
    db: TestDb,
    customers: u64,
    groups: u32,
    auto_accept: bool,
) -> (TestDb, TestApi) {
    world_with(db, customers, groups, |s| {
        s.tick_every = Duration::from_millis(100);
        s.auto_accept_handovers = auto_accept;
    })
    .await
}

/// The same world with server settings of the caller's choosing.
pub async fn world_with(
    db: TestDb,
    customers: u64,
    groups: u32,
    tune: impl FnOnce(&mut ServerSettings),
) -> (TestDb, TestApi) {
    db.db.migrate().await.unwrap();
    seed::seed_departure(&db.db, &scenario(customers, groups))
        .await
        .unwrap();
    let api = TestApi::start_with(&db, tune).await;
    api.settle().await;
    (db, api)
}

/// The world of [`world_with`], each customer with a name and phone written as
/// `sealing` says: the handover benchmark's two sides (ADR 24).
pub async fn world_with_profiles(
    db: TestDb,
    customers: u64,
    groups: u32,
    sealing: seed::Sealing,
    tune: impl FnOnce(&mut ServerSettings),
) -> (TestDb, TestApi) {
    db.db.migrate().await.unwrap();
    let scenario = DepartureScenario {
        profiles: true,
        ..scenario(customers, groups)
    };
    seed::seed_departure_as(&db.db, &scenario, sealing)
        .await
        .unwrap();
    let api = TestApi::start_with(&db, tune).await;
    api.settle().await;
    (db, api)
}

pub fn ops() -> String {
    token(T, Role::Operations, None, &[])
}

pub fn guide(staff: &str) -> String {
    token(T, Role::Guide, Some(staff), &[departure::store().as_str()])
}

pub const START: &str = "mutation($i: StartHandoverInput!) { startHandover(input: $i) { \
    replayed userErrors { field code } job { id status } } }";

/// Starts a handover as operations; the payload of `startHandover`.
pub async fn start(api: &TestApi, input: Value) -> Value {
    let body = api.gql(Some(&ops()), START, json!({ "i": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["startHandover"].clone()
}

pub fn successors() -> Vec<String> {
    (0..SUCCESSORS)
        .map(|n| departure::successor(n).to_string())
        .collect()
}

/// The leaver's book to every successor, balanced, as a resignation.
pub fn handover_input(key: &str) -> Value {
    json!({
        "staffId": departure::leaver().as_str(),
        "successorIds": successors(),
        "strategy": "BALANCED",
        "kind": "RESIGNED",
        "idempotencyKey": key,
    })
}

pub async fn mark_departed(api: &TestApi) {
    let body = api
        .gql(
            Some(&ops()),
            "mutation($i: MarkStaffDepartedInput!) { markStaffDeparted(input: $i) { userErrors { code } } }",
            json!({ "i": { "staffId": departure::leaver().as_str(),
                           "idempotencyKey": Uuid::new_v4().to_string() } }),
        )
        .await;
    assert_eq!(
        body["data"]["markStaffDeparted"]["userErrors"],
        json!([]),
        "{body}"
    );
}
