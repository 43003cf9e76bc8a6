//! The operations console (`/console`, issue 21) in a real browser: Debian's chromium,
//! headless, driven by `tests/console/e2e.mjs` (playwright-core) against the real server
//! on PostgreSQL. The script signs in as operations, an admin and a guide, opens every
//! page, starts a handover from the departures page and watches it finish over the
//! socket, compares the charts' numbers with the API's, checks what a guide is (not)
//! shown, and fails on any console error (a CSP violation is one). It saves a
//! screenshot of each page under `docs/console/`.
//!
//! PostgreSQL only: the pages' queries run on both backends in the other suites; here
//! the browser is what is under test, and one backend is enough to drive it.
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium chromium-driver`, as `.ci/run`
//! does) and Node.js; runs `npm ci` in `tests/console` when its `node_modules` is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use engine::auth::{ApiKeys, Role};
use fixtures::departure;
use harness::departure::{mark_departed, ops, world_with, T};
use harness::fake_wecom::FakeWecom;
use harness::ids::tenant;
use harness::live::{token, TestApi};
use harness::world::{busiest_guides, seeded, sole_customer, ONE_TENANT};
use harness::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The departed guide's book, and how many of it the chosen successor may take.
const BOOK: u64 = 40;
const SUCCESSOR_LIMIT: u64 = 30;
/// The reason of a failed notice, as a page that inserted HTML would run it.
const NOTICE_ERROR: &str = "CUSTOMER_NOT_FOUND <img src=x id=injected>";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start it: {e}"));
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// `tests/console` with its `node_modules`, installed from the lock file if missing.
fn script_dir() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium for the browser tests \
         (DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)"
    );
    let dir = repo().join("tests/console");
    if !dir.join("node_modules/playwright-core").exists() {
        let out = run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm ci in tests/console",
        );
        assert!(out.status.success(), "npm ci in tests/console failed");
    }
    dir
}

/// `acme`'s operations.
fn acme_ops() -> String {
    token("acme", Role::Operations, None, &[])
}

/// The job `id` once `done` says so, asked as `acme`'s operations every 100 ms for at
/// most a minute.
async fn until(api: &TestApi, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let body = api
            .gql(
                Some(&acme_ops()),
                "query($id: ID!) { job(id: $id) { status outcomes { code count } \
                 wecomCalls(first: 100) { nodes { status } } } }",
                json!({ "id": id }),
            )
            .await;
        let job = body["data"]["job"].clone();
        if done(&job) {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A mass message to `acme`'s buyers with a holdout, through the fake WeCom, confirmed
/// by the guides and finished: its job id, for the campaigns page, and the fake (kept
/// for as long as the server may call it).
async fn campaign(api: &TestApi) -> (String, FakeWecom) {
    let fake = FakeWecom::start("ww5823bf96d3bd56c7").await;
    fake.connect(
        &api.engine.db,
        &tenant("acme"),
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )
    .await;
    let body = api
        .gql(
            Some(&acme_ops()),
            "mutation($i: StartCampaignInput!) { startCampaign(input: $i) { \
             userErrors { code } job { id } } }",
            json!({ "i": {
                "kind": "MASS_MESSAGE",
                "text": "618 到店礼：凭此消息领取金饰保养券",
                "audience": { "stages": ["FIRST_PURCHASE", "REPURCHASE", "LOYAL"] },
                "holdoutPerMille": 300,
                "couponCampaignId": "gold-care-618",
                "idempotencyKey": Uuid::new_v4().to_string(),
            } }),
        )
        .await;
    let id = body["data"]["startCampaign"]["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    // Every guide's task is with WeCom (as in tests/api/campaigns.rs) before they confirm.
    let sent = |j: &Value| {
        let codes = |code: &str| {
            j["outcomes"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["code"] == code))
        };
        let calls = j["wecomCalls"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        codes("SENT")
            && !codes("PLANNED")
            && !calls.is_empty()
            && calls.iter().all(|c| c["status"] == "DONE")
    };
    until(api, &id, sent).await;
    fake.confirm_all_mass_messages(chrono::Utc::now().timestamp());
    until(api, &id, |j| j["status"] == "SUCCEEDED").await;
    api.settle().await;
    (id, fake)
}

/// A WeCom notice of `dep` the engine could not apply, whose reason carries markup: the
/// inbox page must show it as text.
async fn failed_notice(api: &TestApi) {
    sqlx::query(
        "INSERT INTO wecom_inbox (tenant_id, dedup_key, received_at, kind, payload, status, \
         processed_at, error, attempts) VALUES ('dep', 'console-e2e', now(), \
         'change_external_contact/edit_external_contact', '<xml/>', 'failed', now(), $1, 3)",
    )
    .bind(NOTICE_ERROR)
    .execute(harness::pg(&api.engine.db))
    .await
    .expect("a failed notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser_under_its_csp_and_the_roles_rules() {
    let dir = script_dir();
    // Tenant `acme` (generated: stores, guides, customers, purchases, coupons) for the
    // funnel, the projections and the guides; tenant `dep` for the departure.
    let db = seeded(TestDb::postgres().await, ONE_TENANT).await;
    let (db, api) = world_with(db, BOOK, 2, |s| {
        s.tick_every = Duration::from_millis(100);
        s.outbound.poll_every = chrono::Duration::zero();
    })
    .await;
    mark_departed(&api).await;
    let (campaign, _wecom) = campaign(&api).await;
    failed_notice(&api).await;
    // The successor the browser picks takes fewer customers than the book holds: the
    // rest are held back, and the page lists them one by one.
    let limit = api
        .gql(
            Some(&ops()),
            "mutation($i: SetCustomerLimitInput!) { setCustomerLimit(input: $i) { userErrors { code } } }",
            json!({ "i": { "staffId": departure::successor(1).as_str(), "limit": SUCCESSOR_LIMIT,
                           "idempotencyKey": Uuid::new_v4().to_string() } }),
        )
        .await;
    assert_eq!(
        limit["data"]["setCustomerLimit"]["userErrors"],
        json!([]),
        "{limit}"
    );
    api.settle().await;

    let guides = busiest_guides(&db.db, "acme").await;
    let (guide, store) = guides[0].clone();
    let mut other_customer = None;
    for (other, _) in &guides[1..] {
        if let Some(c) = sole_customer(&db.db, "acme", other).await {
            other_customer = Some(c);
            break;
        }
    }
    let other_customer = other_customer.expect("a customer another guide alone serves");

    // Operations sign in with an API key (an integration's credential), the others with
    // tokens.
    let key = ApiKeys::new(&api.engine.db)
        .create(&tenant(T), "console-e2e", Role::Operations, &[])
        .await
        .expect("an API key");

    let started = Instant::now();
    let mut node = Command::new("node");
    node.arg("e2e.mjs")
        .current_dir(&dir)
        .env("SCRM_CONSOLE_URL", &api.base)
        .env("SCRM_CHROMIUM", CHROMIUM)
        .env("SCRM_OPS_TOKEN", ops())
        .env("SCRM_OPS_KEY", &key.token)
        .env("SCRM_ADMIN_TOKEN", token("acme", Role::Admin, None, &[]))
        .env(
            "SCRM_GUIDE_TOKEN",
            token("acme", Role::Guide, Some(&guide), &[&store]),
        )
        .env("SCRM_OTHER_CUSTOMER", &other_customer)
        .env("SCRM_LEAVER", departure::leaver().as_str())
        .env("SCRM_SUCCESSOR", departure::successor(1).as_str())
        .env("SCRM_CAMPAIGN", &campaign)
        .env("SCRM_NOTICE_ERROR", NOTICE_ERROR)
        .env("SCRM_HELD_BACK", (BOOK - SUCCESSOR_LIMIT).to_string())
        .env("SCRM_SCREENSHOTS", repo().join("docs/console"));
    // The server answers the browser from this runtime: wait for node off its workers.
    let out = tokio::task::spawn_blocking(move || run(&mut node, "node tests/console/e2e.mjs"))
        .await
        .expect("node");
    println!(
        "browser tests took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the browser tests failed ({}): see their output above",
        out.status
    );
    api.stop().await;
}
