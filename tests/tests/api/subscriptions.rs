//! `jobUpdated` over a real WebSocket (`graphql-transport-ws`) against PostgreSQL: a
//! handover job pushed to its watcher as it runs, waits for the next day's groups and
//! finishes; and the socket's rules (API.md #14): authentication in `connection_init`,
//! at most 20 subscriptions a socket, a tenant sees only its own jobs, a guide none,
//! and a revoked credential is disconnected.

use std::time::Duration;

use engine::auth::{ApiKeys, Role};
use harness::departure::{handover_input, mark_departed, ops, start, world_on, T};
use harness::ids::tenant;
use harness::live::{token, TestApi};
use harness::ws::{connect, open, receive, send, Ws};
use harness::TestDb;
use serde_json::{json, Value};

const WATCH: &str = "subscription($id: ID!) { jobUpdated(id: $id) { status progressDone \
    progressTotal nextRunAt outcomes { kind code count } } }";

async fn subscribe(ws: &mut Ws, id: &str, job: &str) {
    send(
        ws,
        json!({ "id": id, "type": "subscribe",
                "payload": { "query": WATCH, "variables": { "id": job } } }),
    )
    .await;
}

/// The error code a subscription `id` ended with: an `error` message, or a `next`
/// carrying errors.
async fn refused(ws: &mut Ws, id: &str) -> String {
    loop {
        let m = receive(ws, Duration::from_secs(5))
            .await
            .expect("an answer");
        if m["id"] != id {
            continue;
        }
        let errors = match m["type"].as_str() {
            Some("error") => m["payload"].clone(),
            Some("next") => m["payload"]["errors"].clone(),
            other => panic!("expected a refusal, got {other:?}: {m}"),
        };
        return errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {m}"))
            .to_string();
    }
}

async fn started_job(api: &TestApi) -> String {
    mark_departed(api).await;
    let payload = start(api, handover_input(&uuid::Uuid::new_v4().to_string())).await;
    payload["job"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_handover_is_pushed_as_it_runs_waits_for_tomorrow_and_finishes() {
    // Given a book with more groups than move in one day.
    let (_db, api) = world_on(TestDb::postgres().await, 400, 310, false).await;
    let job = started_job(&api).await;
    // When operations watch the job.
    let mut ws = connect(&api, &ops()).await;
    subscribe(&mut ws, "1", &job).await;
    // Then updates arrive until the job waits for the next day's groups, with progress
    // that never goes back.
    let mut seen = Vec::new();
    let waiting = loop {
        let m = receive(&mut ws, Duration::from_secs(30))
            .await
            .expect("socket open");
        assert_eq!(m["type"], "next", "{m}");
        assert!(m["payload"]["errors"].is_null(), "{m}");
        let j = m["payload"]["data"]["jobUpdated"].clone();
        seen.push(j["progressDone"].as_i64().unwrap());
        if j["status"] == "RUNNING" && !j["nextRunAt"].is_null() {
            break j;
        }
    };
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        waiting["progressDone"].as_i64().unwrap() < waiting["progressTotal"].as_i64().unwrap(),
        "{waiting}"
    );
    // When the next day comes.
    api.clock.advance(chrono::Duration::days(1));
    // Then the watcher gets the finished job, and the subscription completes.
    let done = loop {
        let m = receive(&mut ws, Duration::from_secs(30))
            .await
            .expect("socket open");
        if m["type"] == "complete" {
            panic!("completed before the job finished");
        }
        let j = m["payload"]["data"]["jobUpdated"].clone();
        if j["status"] == "SUCCEEDED" {
            break j;
        }
    };
    assert_eq!(done["progressDone"], done["progressTotal"], "{done}");
    let m = receive(&mut ws, Duration::from_secs(5))
        .await
        .expect("socket open");
    assert_eq!(m, json!({ "id": "1", "type": "complete" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_authenticated_capped_and_scoped_to_its_tenant() {
    let (_db, api) = world_on(TestDb::postgres().await, 50, 310, false).await;
    let job = started_job(&api).await;

    // No credential, a forged token, an unknown API key: never acknowledged.
    let wrong_key = format!("Bearer sk.{T}.000000000000.{}", "0".repeat(64));
    for payload in [
        json!({}),
        json!({ "authorization": "Bearer not.a.token" }),
        json!({ "authorization": wrong_key }),
    ] {
        let mut ws = open(&api).await;
        send(
            &mut ws,
            json!({ "type": "connection_init", "payload": payload }),
        )
        .await;
        let answer = receive(&mut ws, Duration::from_secs(5)).await;
        assert!(
            answer
                .as_ref()
                .is_none_or(|a| a["type"] != "connection_ack"),
            "{payload}: {answer:?}"
        );
    }
    // Subscribing without initialising is not served either.
    let mut ws = open(&api).await;
    subscribe(&mut ws, "1", &job).await;
    let answer = receive(&mut ws, Duration::from_secs(5)).await;
    assert!(
        answer.as_ref().is_none_or(|a| a["type"] != "next"),
        "{answer:?}"
    );

    // Another tenant's operations: no such job.
    let mut other = connect(&api, &token("other", Role::Operations, None, &[])).await;
    subscribe(&mut other, "1", &job).await;
    assert_eq!(refused(&mut other, "1").await, "NOT_FOUND");
    // A guide may not watch jobs.
    let mut guide = connect(&api, &token(T, Role::Guide, Some("someone"), &[])).await;
    subscribe(&mut guide, "1", &job).await;
    assert_eq!(refused(&mut guide, "1").await, "FORBIDDEN");

    // Twenty-one subscriptions at once on one socket to a job that stays open (it
    // waits for tomorrow's groups): the server starts them in any order, and exactly
    // one is refused.
    let mut ws = connect(&api, &ops()).await;
    for n in 1..=21 {
        subscribe(&mut ws, &n.to_string(), &job).await;
    }
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 21 {
        let m = receive(&mut ws, Duration::from_secs(10))
            .await
            .expect("socket open");
        let id = m["id"].as_str().unwrap_or_default().to_string();
        let code = match m["type"].as_str() {
            Some("error") => m["payload"][0]["extensions"]["code"].clone(),
            Some("next") => m["payload"]["errors"][0]["extensions"]["code"].clone(),
            _ => continue,
        };
        answered.entry(id).or_insert(code);
    }
    let refused: Vec<&Value> = answered.values().filter(|c| !c.is_null()).collect();
    assert_eq!(refused, vec![&json!("BAD_USER_INPUT")], "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_without_connection_init_is_closed_after_ten_seconds() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    let api = TestApi::start(&db).await;
    let mut ws = open(&api).await;
    let started = std::time::Instant::now();
    assert_eq!(receive(&mut ws, Duration::from_secs(20)).await, None);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_key_is_disconnected() {
    let (_db, api) = world_on(TestDb::postgres().await, 50, 5, false).await;
    let keys = ApiKeys::new(&api.engine.db);
    let key = keys
        .create(&tenant(T), "ops-console", Role::Operations, &[])
        .await
        .unwrap();
    let mut ws = connect(&api, &key.token).await;
    // The socket is open and idle; revoking its key closes it within a recheck.
    assert!(keys
        .revoke(&tenant(T), &key.key_id, chrono::Utc::now())
        .await
        .unwrap());
    let started = std::time::Instant::now();
    assert_eq!(receive(&mut ws, Duration::from_secs(15)).await, None);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}
