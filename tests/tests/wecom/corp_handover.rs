//! A real corp both ways (issue 16): a corp of 50 staff and 20,000 customers is brought
//! in from the fake WeCom over HTTP (the directory sync registers the staff, the first
//! import their customers), then a guide leaves and their book is handed over in WeCom.
//! Each customer ends as WeCom answers for them: rejected with WeCom's errcode,
//! accepted, refused, or still waiting; WeCom transferred nobody twice.

use std::time::{Duration, Instant};

use harness::fake_wecom::{transfer as fake, Corp, FakeWecom};
use harness::live::TestApi;
use harness::wecom_import::{configure, ops, start, CORP};
use harness::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;
use wecom::import::ImportSettings;

const STAFF: usize = 50;
const CUSTOMERS: usize = 20_000;

fn corp() -> Corp {
    Corp {
        staff: STAFF,
        customers: CUSTOMERS,
        shared_every: 10,
        groups: 12,
        members_per_group: 5,
    }
}

async fn gql(api: &TestApi, query: &str, variables: Value) -> Value {
    let body = api.gql(Some(&ops()), query, variables).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"].clone()
}

const JOB: &str = "query($id: ID!) { job(id: $id) { status errorCode \
    outcomes { kind code count } wecomCalls(first: 50) { edges { node { status } } } } }";

/// Every call the job wrote has WeCom's answer: customers are `REQUESTED` as soon as
/// their call is written, so the outcomes alone do not say the calls were all sent.
fn calls_answered(job: &Value) -> bool {
    let calls = job["wecomCalls"]["edges"].as_array().unwrap();
    !calls.is_empty() && calls.iter().all(|c| c["node"]["status"] == "DONE")
}

/// Polls job `id` until `done` says so.
async fn until(api: &TestApi, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let job = gql(api, JOB, json!({ "id": id })).await["job"].clone();
        assert_ne!(job["status"], "FAILED", "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "never {what}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn count(job: &Value, code: &str) -> i64 {
    job["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "CUSTOMER" && o["code"] == code)
        .map(|o| o["count"].as_i64().unwrap())
        .sum()
}

fn key() -> String {
    Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corp_brought_in_from_wecom_hands_a_leavers_book_over_in_wecom() {
    let corp = corp();
    let fake = FakeWecom::start(CORP).await;
    fake.set_corp(corp);
    fake.set_departments(json!([{ "id": 1, "name": "总部", "parentid": 0, "order": 1 }]));
    let users: Vec<Value> = (0..STAFF)
        .map(|i| {
            json!({ "userid": Corp::staff_id(i), "name": format!("导购{i}"), "department": [1],
                    "main_department": 1, "position": "导购", "status": 1 })
        })
        .collect();
    fake.set_users(json!(users));
    let db = TestDb::postgres().await;
    let api = TestApi::start_with(&db, |s| {
        s.tick_every = Duration::from_millis(100);
        s.outbound.poll_every = chrono::Duration::zero();
        s.wecom_import = ImportSettings {
            wait: Duration::from_millis(300),
            ..ImportSettings::default()
        };
    })
    .await;
    configure(&api, &fake).await;

    // Bring the corp in: its staff, then their customers.
    let sync = gql(
        &api,
        "mutation($k: String!) { syncWecomDirectory(input: { idempotencyKey: $k }) { job { id } } }",
        json!({ "k": key() }),
    )
    .await;
    let sync = sync["syncWecomDirectory"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    until(&api, &sync, "synced the directory", |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;
    let import = start(&api).await;
    until(&api, &import, "imported the corp", |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;
    api.settle().await;

    // Guide 0 leaves; WeCom will not transfer one of their customers, one accepts the
    // successor, one refuses; the rest have not answered.
    let leaver = Corp::staff_id(0);
    let successor = Corp::staff_id(2);
    let book: Vec<String> = (0..corp.relations_of(0))
        .map(|n| Corp::customer_id(corp.relation(0, n).customer))
        .collect();
    assert!(book.len() > 300, "a book of a few hundred: {}", book.len());
    fake.reject_transfer(&book[0], fake::INVALID_EXTERNAL_USERID);
    fake.customer_answers(&book[1], 1);
    fake.customer_answers(&book[2], 3);
    let departed = gql(
        &api,
        "mutation($i: MarkStaffDepartedInput!) { markStaffDeparted(input: $i) { userErrors { code } } }",
        json!({ "i": { "staffId": leaver, "idempotencyKey": key() } }),
    )
    .await;
    assert_eq!(
        departed["markStaffDeparted"]["userErrors"],
        json!([]),
        "{departed}"
    );
    let started = gql(
        &api,
        "mutation($i: StartHandoverInput!) { startHandover(input: $i) { userErrors { code } job { id } } }",
        json!({ "i": { "staffId": leaver, "successorIds": [successor], "strategy": "SINGLE",
                       "kind": "RESIGNED", "idempotencyKey": key() } }),
    )
    .await;
    assert_eq!(
        started["startHandover"]["userErrors"],
        json!([]),
        "{started}"
    );
    let handover = started["startHandover"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let job = until(&api, &handover, "concluded as WeCom answered", |j| {
        count(j, "ACCEPTED") == 1
            && count(j, "REFUSED_CUSTOMER") == 1
            && count(j, "WECOM_40096") == 1
            && calls_answered(j)
    })
    .await;
    let requested = count(&job, "REQUESTED");
    let total: i64 = job["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "CUSTOMER")
        .map(|o| o["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        requested,
        book.len() as i64 - 3,
        "the rest still wait: {job}"
    );
    assert_eq!(
        total,
        book.len() as i64,
        "every customer of the leaver: {job}"
    );
    // WeCom got the book in calls of at most 100 and transferred each customer once.
    assert_eq!(
        fake.calls(fake::RESIGNED_CUSTOMERS),
        book.len().div_ceil(100),
        "{job}"
    );
    let transfers = fake.transfers_per_customer();
    assert_eq!(transfers.len(), book.len() - 1);
    assert!(transfers.values().all(|n| *n == 1));
    api.stop().await;
}
