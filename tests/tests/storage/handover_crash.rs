//! A handover job survives its server being killed. The real `scrm serve` binary runs
//! the job against PostgreSQL and is killed with SIGKILL at random moments, several
//! times, and started again; the job resumes each time. The end state must equal that
//! of the same job run once without interruption on an identical database: the same
//! outcome per customer and group, and the same events in every stream (every customer
//! asked exactly once, every group moved once).
//!
//! `SCRM_CRASH_SEED` replays one sequence of kill points; the seed is printed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::departure::{handover_input, mark_departed, ops, start, world_on, T};
use harness::live::SECRET;
use harness::TestDb;
use projections::on_pool;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use server::config::Backend;

const CUSTOMERS: u64 = 6_000;
const GROUPS: u32 = 120;
const KILLS: usize = 6;

/// The `scrm` binary next to this test's executable, brought up to date first: cargo
/// does not rebuild another package's binary for an integration test, and a stale one
/// would test yesterday's server.
pub(crate) fn scrm_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "scrm-server", "--bin", "scrm"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "could not build scrm");
    });
    dir.join("scrm")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `scrm serve` on the test database, its output discarded.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn spawn(url: &str) -> Self {
        let port = free_port();
        let child = Command::new(scrm_binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--auto-accept-handovers", "false", "--tick-seconds", "1"])
            .env("DATABASE_URL", url)
            .env("SCRM_JWT_SECRET", SECRET)
            .env("SCRM_PII_KEY", harness::TEST_PII_KEY)
            .env("SCRM_RATE_PER_CALLER", "100000")
            .env("SCRM_RATE_TENANT_POINTS", "100000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub(crate) async fn ready(&self, http: &reqwest::Client) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("scrm serve did not come up");
    }

    pub(crate) fn kill(mut self) {
        // std's kill is SIGKILL on Unix: no shutdown hook runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn gql(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    variables: Value,
) -> Value {
    http.post(format!("{base}/graphql"))
        .bearer_auth(ops())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const JOB: &str = "query($id: ID!) { job(id: $id) { status progressDone progressTotal } }";

/// Everything a finished handover leaves behind, free of ids and times that differ
/// between two runs: each item's outcome and each stream's events by type.
#[derive(Debug, PartialEq)]
struct EndState {
    job: (String, i64, i64, String),
    items: BTreeMap<(String, String), (Option<String>, String, i64)>,
    events: BTreeMap<(String, String), i64>,
}

async fn end_state(db: &engine::db::Database) -> EndState {
    let job: (String, i64, i64, String) = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT status, progress_done, progress_total, outcomes FROM jobs \
             WHERE tenant_id = $1 AND kind = 'handover'",
        )
        .bind(T)
        .fetch_one(pool)
        .await
    })
    .unwrap();
    let items: Vec<(String, String, Option<String>, String, i64)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT kind, item_id, to_staff_id, code, CAST(status AS bigint) \
             FROM handover_items WHERE tenant_id = $1",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    let events: Vec<(String, String, i64)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT aggregate_id, event_type, count(*) FROM events WHERE tenant_id = $1 \
             GROUP BY aggregate_id, event_type",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    EndState {
        job,
        items: items
            .into_iter()
            .map(|(k, i, to, code, status)| ((k, i), (to, code, status)))
            .collect(),
        events: events
            .into_iter()
            .map(|(stream, kind, n)| ((stream, kind), n))
            .collect(),
    }
}

async fn wait_succeeded(http: &reqwest::Client, base: &str, job: &str) {
    let started = Instant::now();
    loop {
        let body = gql(http, base, JOB, json!({ "id": job })).await;
        let j = &body["data"]["job"];
        assert_ne!(j["status"], "FAILED", "{body}");
        if j["status"] == "SUCCEEDED" {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_killed_at_random_moments_ends_as_an_uninterrupted_one() {
    let seed: u64 = std::env::var("SCRM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("SCRM_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let http = reqwest::Client::new();

    // The uninterrupted run, in process.
    let (reference_db, api) = world_on(TestDb::postgres().await, CUSTOMERS, GROUPS, false).await;
    mark_departed(&api).await;
    let id = start(&api, handover_input(&uuid::Uuid::new_v4().to_string())).await["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_succeeded(&api.http, &api.base, &id).await;
    let reference = end_state(&reference_db.db).await;
    api.stop().await;

    // The same world, its server a separate process killed again and again.
    let (db, api) = world_on(TestDb::postgres().await, CUSTOMERS, GROUPS, false).await;
    mark_departed(&api).await;
    api.stop().await;
    let Backend::Postgres { url } = &db.backend else {
        unreachable!()
    };
    let server = Server::spawn(url);
    server.ready(&http).await;
    let body = gql(
        &http,
        &server.base,
        harness::departure::START,
        json!({ "i": handover_input(&uuid::Uuid::new_v4().to_string()) }),
    )
    .await;
    let id = body["data"]["startHandover"]["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let mut server = Some(server);
    let mut progress_at_kills = Vec::new();
    let progress = || async {
        let (done,): (i64,) = on_pool!(&db.db, |pool| {
            sqlx::query_as("SELECT progress_done FROM jobs WHERE tenant_id = $1")
                .bind(T)
                .fetch_one(pool)
                .await
        })
        .unwrap();
        done
    };
    let total = i64::from(GROUPS) + CUSTOMERS as i64;
    for _ in 0..KILLS {
        let running = server.take().unwrap_or_else(|| Server::spawn(url));
        running.ready(&http).await;
        // Kill once this process has moved the job on, at a random moment after: a fixed
        // delay from readiness missed the job altogether on a loaded machine (the job
        // resumes on the runner's next tick).
        let before = progress().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while progress().await == before && before < total && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        running.kill();
        progress_at_kills.push(progress().await);
    }
    println!("progress when killed: {progress_at_kills:?}");
    // The kills must have hit the job while it ran, or this test shows nothing.
    let mid_job = progress_at_kills
        .iter()
        .filter(|p| **p > 0 && **p < total)
        .count();
    assert!(mid_job >= 2, "only {mid_job} kills hit the running job");
    let last = Server::spawn(url);
    last.ready(&http).await;
    wait_succeeded(&http, &last.base, &id).await;
    last.kill();

    let crashed = end_state(&db.db).await;
    assert_eq!(crashed.job, reference.job);
    assert_eq!(crashed.items, reference.items);
    assert_eq!(crashed.events, reference.events);
    // And the comparison has substance: every customer was asked once.
    let asked = crashed
        .events
        .iter()
        .filter(|((_, kind), _)| kind == "HandoverRequested")
        .map(|(_, n)| *n)
        .collect::<Vec<_>>();
    let requested = crashed
        .items
        .values()
        .filter(|(_, code, _)| code == "REQUESTED")
        .count();
    assert!(requested as u64 > CUSTOMERS / 2, "{requested} requested");
    assert_eq!(asked.len(), requested, "customers asked");
    assert!(asked.iter().all(|n| *n == 1), "someone was asked twice");
}
