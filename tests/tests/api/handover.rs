//! The one-click handover over real HTTP against PostgreSQL: a departed guide with a
//! large book and more groups than move in a day, one mutation, a job that requests
//! every customer in WeCom-sized batches and moves 300 groups a day, the 24-hour
//! auto-accept on the server's clock, and a resumed job that asks nobody twice.
//!
//! The book has the 20,000 customers the issue names; `SCRM_HANDOVER_CUSTOMERS=2000`
//! runs a smaller one while working on it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::customer::{CustomerCommand, RefusalReason};
use domain::group::Member;
use domain::stamp::{stream_id, Stamped};
use engine::commands::{Actor, CommandMeta};
use fixtures::departure;
use harness::departure::{
    guide, handover_input, mark_departed, ops, start, world_on, SUCCESSORS, T,
};
use harness::ids::tenant;
use harness::live::{error_code, TestApi};
use harness::TestDb;
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const GROUPS: u32 = 350;

fn book_size() -> u64 {
    std::env::var("SCRM_HANDOVER_CUSTOMERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

async fn world(customers: u64, groups: u32, auto_accept: bool) -> (TestDb, TestApi) {
    world_on(TestDb::postgres().await, customers, groups, auto_accept).await
}

const JOB: &str = "query($id: ID!) { job(id: $id) { status progressDone progressTotal \
    nextRunAt errorCode outcomes { kind status code count } } }";

async fn job(api: &TestApi, id: &str) -> Value {
    let body = api.gql(Some(&ops()), JOB, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["job"].clone()
}

/// Polls the job until `done` says so (or it failed), for at most `limit`.
async fn poll(api: &TestApi, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let j = job(api, id).await;
        assert_ne!(j["status"], "FAILED", "{j}");
        if done(&j) {
            return j;
        }
        assert!(started.elapsed() < limit, "job stuck: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(kind, code) -> count` from a job's outcomes.
fn outcomes(job: &Value) -> BTreeMap<(String, String), i64> {
    job["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                (
                    o["kind"].as_str().unwrap().to_string(),
                    o["code"].as_str().unwrap().to_string(),
                ),
                o["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn count(job: &Value, kind: &str, code: &str) -> i64 {
    outcomes(job)
        .get(&(kind.to_string(), code.to_string()))
        .copied()
        .unwrap_or(0)
}

async fn events_by_type(api: &TestApi) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT event_type, count(*) FROM events WHERE tenant_id = $1 GROUP BY event_type",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    rows.into_iter().collect()
}

async fn departure_view(api: &TestApi) -> Value {
    let body = api
        .gql(
            Some(&ops()),
            "{ departures(first: 10) { edges { node { staffId customersRemaining \
               groupsRemaining handoversWaiting handoversAccepted handoversRefused } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["departures"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| n["staffId"] == departure::leaver().as_str())
        .expect("the leaver is in the view")
}

/// A departed guide is no longer a caller at all, so cannot list the book they left.
async fn assert_shut_out(api: &TestApi, token: &str) {
    let body = api
        .gql(
            Some(token),
            "{ customers(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{body}"
    );
}

/// Every customer a guide's `customers` list returns.
async fn listed(api: &TestApi, token: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let body = api
            .gql(
                Some(token),
                "query($after: String) { customers(first: 100, after: $after) { \
                   pageInfo { hasNextPage endCursor } edges { node { externalUserId } } } }",
                json!({ "after": after }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let page = &body["data"]["customers"];
        for edge in page["edges"].as_array().unwrap() {
            seen.insert(edge["node"]["externalUserId"].as_str().unwrap().to_string());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return seen;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

/// `customer -> staff` for everyone the reassignment view says is served.
async fn served(api: &TestApi) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, staff_id FROM rm_staff_customer WHERE tenant_id = $1 \
             ORDER BY customer_id, staff_id",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (c, s) in rows {
        out.entry(c).or_default().push(s);
    }
    out
}

/// `customer -> (handover id, successor)` of the job's handovers.
async fn handovers(api: &TestApi) -> BTreeMap<String, (String, String)> {
    let rows: Vec<(String, String, String)> = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, handover_id, to_staff_id FROM rm_handover WHERE tenant_id = $1",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    rows.into_iter().map(|(c, h, s)| (c, (h, s))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_guides_book_moves_in_one_job_and_completes_after_24_hours() {
    let n = book_size();
    let n_i = n as i64;
    let groups = i64::from(GROUPS);
    let (_db, api) = world(n, GROUPS, true).await;
    let leaver = departure::leaver().to_string();

    // Still on the job: a resigned handover is refused; so is the leaver as successor.
    let refused = start(&api, handover_input(&Uuid::new_v4().to_string())).await;
    assert_eq!(
        refused["userErrors"][0]["code"], "STAFF_NOT_DEPARTED",
        "{refused}"
    );
    mark_departed(&api).await;
    let mut same = handover_input(&Uuid::new_v4().to_string());
    same["successorIds"] = json!([leaver]);
    let refused = start(&api, same).await;
    assert_eq!(refused["userErrors"][0]["code"], "SAME_STAFF", "{refused}");

    // One mutation.
    let key = Uuid::new_v4().to_string();
    let clicked = Instant::now();
    let started = start(&api, handover_input(&key)).await;
    assert_eq!(started["userErrors"], json!([]), "{started}");
    assert_eq!(started["replayed"], false);
    let job_id = started["job"]["id"].as_str().unwrap().to_string();
    // Another start for the same guide while this one is unfinished: the same job.
    let again = start(&api, handover_input(&Uuid::new_v4().to_string())).await;
    assert_eq!(again["job"]["id"], job_id.as_str(), "{again}");

    // Every customer requested and today's 300 groups moved; 50 wait for tomorrow.
    let waiting = poll(&api, &job_id, Duration::from_secs(300), |j| {
        !j["nextRunAt"].is_null() || j["status"] == "SUCCEEDED"
    })
    .await;
    let requested_in = clicked.elapsed();
    println!(
        "handover of {n} customers: all requests recorded {:.1} s after the mutation ({:.0}/s)",
        requested_in.as_secs_f64(),
        n as f64 / requested_in.as_secs_f64()
    );
    assert_eq!(waiting["status"], "RUNNING", "{waiting}");
    assert_eq!(waiting["progressTotal"], n_i + groups);
    assert_eq!(waiting["progressDone"], n_i + 300);
    assert_eq!(count(&waiting, "CUSTOMER", "REQUESTED"), n_i, "{waiting}");
    assert_eq!(count(&waiting, "GROUP", "TRANSFERRED"), 300, "{waiting}");
    assert_eq!(
        count(&waiting, "GROUP", "SCHEDULED"),
        groups - 300,
        "{waiting}"
    );
    let next_run: chrono::DateTime<Utc> = waiting["nextRunAt"].as_str().unwrap().parse().unwrap();
    assert!(next_run > api.clock.now() && next_run <= api.clock.now() + chrono::Duration::days(1));
    let scheduled = api
        .gql(
            Some(&ops()),
            "query($id: ID!) { job(id: $id) { handoverItems(first: 100, code: \"SCHEDULED\") { \
               edges { node { kind groupId dueDay status toStaffId } } } } }",
            json!({ "id": job_id }),
        )
        .await;
    let items = scheduled["data"]["job"]["handoverItems"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{scheduled}"));
    assert_eq!(items.len() as i64, groups - 300);
    assert!(items
        .iter()
        .all(|i| i["node"]["status"] == 2 && !i["node"]["dueDay"].is_null()));

    // The job, the reassignment view and the event log agree.
    api.settle().await;
    let view = departure_view(&api).await;
    assert_eq!(view["customersRemaining"], n_i, "{view}");
    assert_eq!(view["handoversWaiting"], n_i, "{view}");
    assert_eq!(view["groupsRemaining"], groups - 300, "{view}");
    let log = events_by_type(&api).await;
    assert_eq!(log["HandoverRequested"], n_i);
    assert_eq!(log["OwnershipTransferred"], 300);
    assert_eq!(log["GroupTransferClaimed"], 300);
    // Balanced: the three successors (all empty, same limit) get a third each.
    let requested = handovers(&api).await;
    let mut per_successor: BTreeMap<String, i64> = BTreeMap::new();
    for (_, to) in requested.values() {
        *per_successor.entry(to.clone()).or_default() += 1;
    }
    assert_eq!(per_successor.len(), SUCCESSORS as usize);
    assert!(
        per_successor.values().all(|c| (c - n_i / 3).abs() <= 1),
        "{per_successor:?}"
    );

    // A few customers refuse (WeCom status 3): a resigned refusal loses them.
    let refusing: Vec<String> = requested.keys().take(5).cloned().collect();
    for c in &refusing {
        let (handover, _) = &requested[c];
        api.engine
            .customers
            .execute(
                &stream_id(&tenant(T), c),
                Stamped::new(
                    api.clock.now(),
                    CustomerCommand::RefuseHandover {
                        handover: handover.parse().unwrap(),
                        reason: RefusalReason::CustomerRefused,
                    },
                ),
                &CommandMeta::new(tenant(T), Actor::integration("wecom"), Uuid::new_v4()),
            )
            .await
            .unwrap();
    }

    // A day later: tomorrow's groups move and the unanswered handovers complete.
    api.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    let accepted = n_i - refusing.len() as i64;
    let done = poll(&api, &job_id, Duration::from_secs(300), |j| {
        j["status"] == "SUCCEEDED" && count(j, "CUSTOMER", "ACCEPTED") == accepted
    })
    .await;
    println!(
        "auto-accept of {accepted} handovers done {:.1} s after the clock moved",
        clicked.elapsed().as_secs_f64() - requested_in.as_secs_f64()
    );
    assert_eq!(done["progressDone"], n_i + groups, "{done}");
    assert_eq!(count(&done, "CUSTOMER", "REFUSED_CUSTOMER"), 5, "{done}");
    assert_eq!(count(&done, "GROUP", "TRANSFERRED"), groups, "{done}");
    assert!(done["nextRunAt"].is_null());

    api.settle().await;
    let view = departure_view(&api).await;
    assert_eq!(view["customersRemaining"], 0, "{view}");
    assert_eq!(view["groupsRemaining"], 0, "{view}");
    assert_eq!(view["handoversWaiting"], 0, "{view}");
    assert_eq!(view["handoversAccepted"], accepted, "{view}");
    assert_eq!(view["handoversRefused"], 5, "{view}");
    let log = events_by_type(&api).await;
    assert_eq!(log["HandoverAccepted"], accepted);
    assert_eq!(log["HandoverRefused"], 5);
    assert_eq!(log["OwnershipTransferred"], groups);
    assert_eq!(log["HandoverRequested"], n_i, "no customer was asked twice");

    // Everyone is with their successor, except the refusals, who are with nobody.
    let now_served = served(&api).await;
    for (c, (_, to)) in &requested {
        if refusing.contains(c) {
            assert!(!now_served.contains_key(c), "{c}: {:?}", now_served.get(c));
        } else {
            assert_eq!(now_served.get(c), Some(&vec![to.clone()]), "{c}");
        }
    }
    assert_eq!(requested.len() as u64, n);
    // The successor's guide token sees exactly their new customers; the leaver's none.
    let first = departure::successor(0).to_string();
    let theirs: BTreeSet<String> = requested
        .iter()
        .filter(|(c, (_, to))| *to == first && !refusing.contains(c))
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(listed(&api, &guide(&first)).await, theirs);
    assert_shut_out(&api, &guide(&leaver)).await;
    // The departed guide left the groups they owned.
    let (g, _) = api
        .engine
        .groups
        .load(&stream_id(&tenant(T), departure::group(0).as_str()))
        .await
        .unwrap();
    assert!(!g.members().contains(&Member::Staff(departure::leaver())));
    assert_ne!(g.owner(), Some(&departure::leaver()));

    // The same key again: the same job, nothing new.
    let before = events_by_type(&api).await;
    let replay = start(&api, handover_input(&key)).await;
    assert_eq!(replay["replayed"], true, "{replay}");
    assert_eq!(replay["job"]["id"], job_id.as_str());
    let jobs: i64 = on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!(jobs, 1);
    assert_eq!(events_by_type(&api).await, before);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_handover_job_asks_nobody_twice() {
    let (db, api) = world(450, 5, false).await;
    mark_departed(&api).await;
    let started = start(&api, handover_input(&Uuid::new_v4().to_string())).await;
    let job_id = started["job"]["id"].as_str().unwrap().to_string();
    let done = poll(&api, &job_id, Duration::from_secs(120), |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(count(&done, "CUSTOMER", "REQUESTED"), 450);
    api.stop().await;

    // As if the server died after a batch's commands but before its commit: the job
    // row says running and two batches are still to do.
    let local: String = on_pool!(&db.db, |pool| {
        sqlx::query_scalar("SELECT job_id FROM jobs")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    on_pool!(&db.db, |pool| {
        sqlx::query(
            "UPDATE handover_items SET code = 'PLANNED' WHERE tenant_id = $1 AND job_id = $2 \
             AND kind = 'customer' AND batch IN (SELECT min(batch) FROM handover_items \
             WHERE tenant_id = $1 AND job_id = $2 UNION SELECT max(batch) FROM handover_items \
             WHERE tenant_id = $1 AND job_id = $2 AND kind = 'customer')",
        )
        .bind(T)
        .bind(&local)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE jobs SET status = 'running', finished_at = NULL, progress_done = 0 \
             WHERE job_id = $1",
        )
        .bind(&local)
        .execute(pool)
        .await
        .map(|_| ())
    })
    .unwrap();
    let before = {
        let api = TestApi::start(&db).await;
        let before = events_by_type(&api).await;
        // The restarted server resumes the job.
        let resumed = poll(&api, &job_id, Duration::from_secs(120), |j| {
            j["status"] == "SUCCEEDED"
        })
        .await;
        assert_eq!(count(&resumed, "CUSTOMER", "REQUESTED"), 450, "{resumed}");
        assert_eq!(resumed["progressDone"], resumed["progressTotal"]);
        assert_eq!(
            events_by_type(&api).await,
            before,
            "the resumed job appended nothing"
        );
        api.stop().await;
        before
    };
    assert_eq!(before["HandoverRequested"], 450);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_to_one_successor_runs_to_the_end_on_sqlite_too() {
    let (_db, api) = world_on(TestDb::sqlite().await, 250, 3, true).await;
    mark_departed(&api).await;
    let mut input = handover_input(&Uuid::new_v4().to_string());
    input["successorIds"] = json!([departure::successor(1).as_str()]);
    input["strategy"] = json!("SINGLE");
    let started = start(&api, input).await;
    assert_eq!(started["userErrors"], json!([]), "{started}");
    let job_id = started["job"]["id"].as_str().unwrap().to_string();
    let done = poll(&api, &job_id, Duration::from_secs(120), |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(count(&done, "CUSTOMER", "REQUESTED"), 250, "{done}");
    assert_eq!(count(&done, "GROUP", "TRANSFERRED"), 3, "{done}");
    api.clock.advance(chrono::Duration::hours(25));
    poll(&api, &job_id, Duration::from_secs(120), |j| {
        count(j, "CUSTOMER", "ACCEPTED") == 250
    })
    .await;
    api.settle().await;
    let second = departure::successor(1).to_string();
    let now_served = served(&api).await;
    assert_eq!(now_served.len(), 250);
    assert!(now_served.values().all(|s| *s == vec![second.clone()]));
    // Only the first page: paging the customer list by time cursor on SQLite is a
    // separate matter (its text timestamps keep nanoseconds the cursor drops).
    assert!(!listed(&api, &guide(&second)).await.is_empty());
    assert_shut_out(&api, &guide(&departure::leaver().to_string())).await;
    api.stop().await;
}

/// Every server ticks; the auto-accept and the outcome sync run on whichever holds the
/// handover tick's lease, so servers do not replay each other's accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_accept_runs_on_one_server_at_a_time() {
    let n = 300_i64;
    let (_db, api) = world(n as u64, 10, true).await;
    mark_departed(&api).await;
    let started = start(&api, handover_input(&Uuid::new_v4().to_string())).await;
    let job_id = started["job"]["id"].as_str().unwrap().to_string();
    poll(&api, &job_id, Duration::from_secs(120), |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;

    // Another server holds the lease (taken between this server's ticks).
    let held = loop {
        if let Some(lease) = engine::lease::try_lease(&api.engine.db, "scrm-handover-tick")
            .await
            .unwrap()
        {
            break lease;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    api.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    // Ten of this server's ticks: none accepts anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(events_by_type(&api).await.get("HandoverAccepted"), None);

    // Released (the other server stopped): this one takes over.
    held.release().await;
    let done = poll(&api, &job_id, Duration::from_secs(120), |j| {
        count(j, "CUSTOMER", "ACCEPTED") == n
    })
    .await;
    assert_eq!(count(&done, "CUSTOMER", "REQUESTED"), 0, "{done}");
    assert_eq!(events_by_type(&api).await["HandoverAccepted"], n);
}

/// The resolver asks the domain's own rule (it used to copy it, and had drifted): a
/// departure dated later than now has not happened, so a resigned handover is refused
/// before a job starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departure_dated_in_the_future_cannot_start_a_resigned_handover() {
    let (_db, api) = world(20, 2, false).await;
    // The departure is recorded by a clock a day ahead of the one that asks.
    api.clock.advance(chrono::Duration::days(1));
    mark_departed(&api).await;
    api.clock.advance(chrono::Duration::days(-1));
    let refused = start(&api, handover_input(&Uuid::new_v4().to_string())).await;
    assert_eq!(
        refused["userErrors"][0]["code"], "STAFF_NOT_DEPARTED",
        "{refused}"
    );
    assert!(refused["job"].is_null(), "{refused}");
}
