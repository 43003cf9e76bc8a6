//! Benchmark: the portrait as of an instant (`customer(asOf:)`) of a customer whose
//! stream holds 1,000 events, over HTTP on a live server, on PostgreSQL and on SQLite,
//! next to today's portrait of the same customer from the read model. Prints figures;
//! not a test.
//!
//! ```text
//! cargo run --release -p scrm-tests --example as_of_bench -- [events] [requests]
//! ```
//! Defaults: 1,000 events, 500 requests of each kind; the instants asked for rotate over
//! a quarter, half, three quarters and all of the stream. `SCRM_AS_OF_BACKENDS=sqlite`
//! (or `postgres`) runs one backend only.

use std::time::{Duration, Instant};

use engine::auth::Role;
use harness::live::token;
use harness::world::{served, ONE_TENANT};
use harness::TestDb;
use projections::on_pool;
use serde_json::json;

const PORTRAIT: &str = "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { \
    name stage purchases lastActivityAt \
    staff(first: 10) { edges { node { staffName remark } } } \
    tags(first: 10) { edges { node { name groupName } } } \
    groups(first: 5) { edges { node { name } } } \
    coupons(first: 5) { edges { node { campaignId status } } } \
    timeline(first: 20) { edges { node { occurredAt kind summary } } } } }";

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn run(name: &str, db: TestDb, events: usize, requests: usize) {
    let (_db, api) = served(db, ONE_TENANT).await;
    let (guide, customer): (String, String) = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT staff_id, customer_id FROM rm_customer_staff WHERE tenant_id = 'acme' \
             ORDER BY customer_id LIMIT 1",
        )
        .fetch_one(pool)
        .await
    })
    .unwrap();
    let me = token("acme", Role::Guide, Some(&guide), &[]);
    let id = graphql::ids::encode("Customer", &customer).to_string();
    let stream = format!("acme:{customer}");
    let count = || async {
        let n: i64 = on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' \
                 AND aggregate_id = $1",
            )
            .bind(&stream)
            .fetch_one(pool)
            .await
        })
        .unwrap();
        n as usize
    };
    let change = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { userErrors { code } } }";
    let mut instants = Vec::new();
    let mut i = 0;
    while count().await < events {
        i += 1;
        let vars = json!({ "i": { "customerId": id, "remark": format!("第{i}次备注"),
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } });
        let body = api.gql(Some(&me), change, vars).await;
        assert_eq!(body["data"]["setRemark"]["userErrors"], json!([]), "{body}");
        if i % (events / 4) == 0 {
            instants.push(chrono::Utc::now().to_rfc3339());
        }
    }
    instants.push(chrono::Utc::now().to_rfc3339());
    let total = count().await;
    for (label, as_of) in [("as of an instant", true), ("today (read model)", false)] {
        let mut took = Vec::with_capacity(requests);
        for n in 0..requests + 20 {
            let at = if as_of {
                json!(instants[n % instants.len()])
            } else {
                json!(null)
            };
            let started = Instant::now();
            let body = api
                .gql(Some(&me), PORTRAIT, json!({ "id": id, "at": at }))
                .await;
            let elapsed = started.elapsed();
            assert!(body["errors"].is_null(), "{body}");
            assert!(body["data"]["customer"].is_object(), "{body}");
            if n >= 20 {
                took.push(elapsed);
            }
        }
        took.sort();
        println!(
            "{name:<8} {label:<20} stream {total} events, {requests} requests: \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            quantile(&took, 0.5),
            quantile(&took, 0.99),
            quantile(&took, 1.0)
        );
    }
    api.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(1_000, |a| a.parse().expect("events"));
    let requests: usize = args.next().map_or(500, |a| a.parse().expect("requests"));
    // `SCRM_AS_OF_BACKENDS=sqlite` (or `postgres`) runs one of them, e.g. under a profiler.
    let only = std::env::var("SCRM_AS_OF_BACKENDS").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only.split(',').any(|b| b == name);
    if runs("postgres") {
        run("postgres", TestDb::postgres().await, events, requests).await;
    }
    if runs("sqlite") {
        run("sqlite", TestDb::sqlite().await, events, requests).await;
    }
}
