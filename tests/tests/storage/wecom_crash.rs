//! A handover in WeCom survives its server being killed between a transfer call and
//! WeCom's answer (issue 16). The real `scrm serve` sends the calls to the fake WeCom,
//! which carries them out and holds its answers; the server is killed with SIGKILL
//! while they are held, and a new one started. WeCom transferred every customer and
//! moved every group exactly once, and the handovers conclude on WeCom's answers.

use std::time::{Duration, Instant};

use fixtures::departure;
use harness::departure::{mark_departed, start, world_with, T};
use harness::fake_wecom::{transfer as fake, FakeWecom};
use harness::ids::tenant;
use harness::TestDb;
use projections::on_pool;
use serde_json::json;
use server::config::Backend;

use super::handover_crash::{gql, Server};

const CORP: &str = "ww5823bf96d3bd56c7";
const CUSTOMERS: u64 = 150;
const GROUPS: u32 = 2;

/// `status -> count` of the tenant's calls to WeCom.
async fn calls(db: &engine::db::Database) -> Vec<(String, i64)> {
    on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT status, count(*) FROM wecom_outbox WHERE tenant_id = $1 \
             GROUP BY status ORDER BY status",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(120), "never {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_transfer_calls_and_answers_transfers_nobody_twice() {
    let fake = FakeWecom::start(CORP).await;
    let http = reqwest::Client::new();
    // The job runs in process and writes its calls; this server never ticks, so it
    // sends none of them.
    let (db, api) = world_with(TestDb::postgres().await, CUSTOMERS, GROUPS, |s| {
        s.tick_every = Duration::from_secs(3_600);
    })
    .await;
    fake.connect(
        &db.db,
        &tenant(T),
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )
    .await;
    mark_departed(&api).await;
    let started = start(
        &api,
        json!({
            "staffId": departure::leaver().as_str(),
            "successorIds": [departure::successor(0).as_str()],
            "strategy": "SINGLE",
            "kind": "RESIGNED",
            "idempotencyKey": uuid::Uuid::new_v4().to_string(),
        }),
    )
    .await;
    let job = started["job"]["id"].as_str().unwrap().to_string();
    eventually("the job wrote its calls", async || {
        calls(&db.db).await == vec![("pending".to_string(), 2 + i64::from(GROUPS))]
    })
    .await;
    api.stop().await;

    // WeCom acts on every call and holds its answers; the server dies meanwhile.
    let _held = fake.hold_answers();
    let Backend::Postgres { url } = &db.backend else {
        unreachable!()
    };
    let first = Server::spawn(url);
    first.ready(&http).await;
    eventually("WeCom acted on every call", async || {
        fake.transfers_per_customer().len() == CUSTOMERS as usize
            && fake.moves_per_group().len() == GROUPS as usize
    })
    .await;
    first.kill();
    fake.release_answers();
    assert!(
        calls(&db.db).await.iter().any(|(s, _)| s == "sending"),
        "the kill came between call and answer"
    );

    // Customers answer; a new server asks WeCom what it holds and sends nothing twice.
    for n in 0..10 {
        fake.customer_answers(&departure::customer(n).to_string(), 1);
    }
    fake.customer_answers(&departure::customer(10).to_string(), 3);
    let second = Server::spawn(url);
    second.ready(&http).await;
    eventually("every call answered", async || {
        calls(&db.db).await == vec![("done".to_string(), 2 + i64::from(GROUPS))]
    })
    .await;
    assert_eq!(
        fake.calls(fake::RESIGNED_CUSTOMERS),
        2,
        "two batches of at most 100"
    );
    assert_eq!(fake.calls(fake::RESIGNED_GROUPS), GROUPS as usize);
    assert!(fake.transfers_per_customer().values().all(|n| *n == 1));
    assert!(fake.moves_per_group().values().all(|n| *n == 1));
    let query = "query($id: ID!) { job(id: $id) { outcomes { kind code count } } }";
    eventually("WeCom's answers concluded the handovers", async || {
        let body = gql(&http, &second.base, query, json!({ "id": job })).await;
        let outcomes = body["data"]["job"]["outcomes"].to_string();
        outcomes.contains(r#""code":"ACCEPTED","count":10"#)
            && outcomes.contains(r#""code":"REFUSED_CUSTOMER","count":1"#)
            && outcomes.contains(r#""code":"TRANSFERRED","count":2"#)
    })
    .await;
    second.kill();
}
