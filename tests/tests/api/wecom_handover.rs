//! The one-click handover acting in WeCom (issue 16): a tenant with WeCom API credentials
//! hands a departed guide's book over through the fake WeCom server over HTTP. Each
//! customer's outcome is WeCom's answer (rejected with an errcode, accepted, refused,
//! still waiting), groups move when WeCom moved them, the 24-hour rule no longer decides,
//! and a call whose answer was lost is asked about, never sent twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use engine::handover::transfer;
use fixtures::departure;
use harness::departure::{mark_departed, ops, start, world_with, T};
use harness::fake_wecom::{transfer as fake, Failure, FakeWecom};
use harness::ids::tenant;
use harness::live::TestApi;
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const CORP: &str = "ww5823bf96d3bd56c7";
const CUSTOMERS: u64 = 40;
const GROUPS: u32 = 3;

/// The departure world, its tenant's WeCom API pointing at `fake`; results are read
/// on every tick.
async fn world(db: TestDb, fake: &FakeWecom) -> (TestDb, TestApi) {
    let (db, api) = world_with(db, CUSTOMERS, GROUPS, |s| {
        s.tick_every = Duration::from_millis(100);
        // On, to show it no longer decides for a tenant that acts in WeCom.
        s.auto_accept_handovers = true;
        s.outbound.poll_every = chrono::Duration::zero();
    })
    .await;
    fake.connect(
        &api.engine.db,
        &tenant(T),
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )
    .await;
    (db, api)
}

fn customer(n: u64) -> String {
    departure::customer(n).to_string()
}

/// The leaver's book to one successor, as a resignation.
async fn hand_over(api: &TestApi) -> String {
    mark_departed(api).await;
    let started = start(
        api,
        json!({
            "staffId": departure::leaver().as_str(),
            "successorIds": [departure::successor(1).as_str()],
            "strategy": "SINGLE",
            "kind": "RESIGNED",
            "idempotencyKey": Uuid::new_v4().to_string(),
        }),
    )
    .await;
    assert_eq!(started["userErrors"], json!([]), "{started}");
    started["job"]["id"].as_str().unwrap().to_string()
}

const JOB: &str = "query($id: ID!) { job(id: $id) { status wecomMode \
    outcomes { kind status code count } \
    wecomCalls(first: 50) { edges { node { api status attempts error request answer } } } } }";

async fn job(api: &TestApi, id: &str) -> Value {
    let body = api.gql(Some(&ops()), JOB, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["job"].clone()
}

fn count(job: &Value, kind: &str, code: &str) -> i64 {
    job["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == kind && o["code"] == code)
        .map(|o| o["count"].as_i64().unwrap())
        .sum()
}

async fn until(api: &TestApi, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let j = job(api, id).await;
        if done(&j) {
            return j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never {what}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `customer -> staff serving them` from the reassignment view.
async fn served(api: &TestApi) -> BTreeMap<String, Vec<String>> {
    api.settle().await;
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

on_both_backends! {
    citus;
    async fn each_customer_ends_as_wecom_answers_for_them(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        // WeCom will not start two of the transfers; one customer accepts, one refuses.
        fake.reject_transfer(&customer(0), fake::INVALID_EXTERNAL_USERID);
        fake.reject_transfer(&customer(1), 40097);
        fake.customer_answers(&customer(2), 1);
        fake.customer_answers(&customer(3), 3);
        let id = hand_over(&api).await;

        let j = until(&api, &id, "concluded as WeCom answered", |j| {
            count(j, "CUSTOMER", "ACCEPTED") == 1
                && count(j, "CUSTOMER", "REFUSED_CUSTOMER") == 1
                && count(j, "CUSTOMER", "WECOM_40096") == 1
                && count(j, "CUSTOMER", "WECOM_40097") == 1
                && count(j, "GROUP", "TRANSFERRED") == i64::from(GROUPS)
        })
        .await;
        assert_eq!(j["wecomMode"], "WECOM", "{j}");
        let waiting = count(&j, "CUSTOMER", "REQUESTED");
        assert_eq!(waiting, CUSTOMERS as i64 - 4, "{j}");
        // One call for the book (at most 100 a call), one per group; every call answered.
        assert_eq!(fake.calls(fake::RESIGNED_CUSTOMERS), 1);
        assert_eq!(fake.calls(fake::RESIGNED_GROUPS), GROUPS as usize);
        let calls = j["wecomCalls"]["edges"].as_array().unwrap();
        assert_eq!(calls.len(), 1 + GROUPS as usize, "{j}");
        assert!(calls.iter().all(|c| c["node"]["status"] == "DONE"), "{j}");
        let book = calls
            .iter()
            .find(|c| c["node"]["api"] == transfer::RESIGNED_CUSTOMERS)
            .unwrap();
        assert!(book["node"]["answer"].as_str().unwrap().contains("40096"), "{j}");
        assert_eq!(
            fake.transfers_per_customer().len(),
            CUSTOMERS as usize - 2,
            "WeCom started every transfer it did not refuse"
        );
        assert!(fake.moves_per_group().values().all(|n| *n == 1));

        let successor = departure::successor(1).to_string();
        let leaver = departure::leaver().to_string();
        let now_served = served(&api).await;
        assert_eq!(now_served[&customer(0)], vec![leaver.clone()], "nothing moved");
        assert_eq!(now_served[&customer(2)], vec![successor.clone()], "accepted");
        assert!(!now_served.contains_key(&customer(3)), "refused a resigned handover: lost");
        for g in 0..GROUPS {
            let group = departure::group(g).to_string();
            assert_eq!(fake.group_owner(&group).as_deref(), Some(successor.as_str()));
        }

        // A day later the 24-hour rule has not decided for WeCom: the rest still wait...
        api.clock.advance(chrono::Duration::hours(25));
        tokio::time::sleep(Duration::from_millis(800)).await;
        let j = job(&api, &id).await;
        assert_eq!(count(&j, "CUSTOMER", "REQUESTED"), waiting, "{j}");
        // ...until WeCom says a customer took the successor.
        fake.customer_answers(&customer(4), 1);
        until(&api, &id, "the later answer", |j| count(j, "CUSTOMER", "ACCEPTED") == 2).await;
        assert!(fake.transfers_per_customer().values().all(|n| *n == 1));
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_transfer_whose_answer_was_lost_is_asked_about_and_never_sent_twice(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        // WeCom is over its frequency limit at first, then carries the call out and the
        // answer is lost on the way back.
        fake.fail(Some(Failure::Errcode(45009)));
        fake.lose_answers(1 + GROUPS as usize);
        fake.customer_answers(&customer(5), 1);
        let id = hand_over(&api).await;
        let j = until(&api, &id, "told to wait", |j| {
            j["wecomCalls"]["edges"].as_array().is_some_and(|c| {
                c.len() == 1 + GROUPS as usize
                    && c.iter().all(|c| {
                        c["node"]["status"] == "PENDING"
                            && c["node"]["error"].as_str().unwrap_or("").contains("45009")
                    })
            })
        })
        .await;
        assert_eq!(fake.transfers_per_customer().len(), 0, "{j}");
        fake.fail(None);
        api.clock.advance(chrono::Duration::minutes(1));
        until(&api, &id, "sent with the answer lost", |j| {
            j["wecomCalls"]["edges"].as_array().unwrap().iter().all(|c| c["node"]["status"] == "SENDING")
        })
        .await;
        assert_eq!(fake.transfers_per_customer().len(), CUSTOMERS as usize);
        // The next attempt asks WeCom what it holds, and sends nothing again.
        api.clock.advance(chrono::Duration::minutes(2));
        let j = until(&api, &id, "answered", |j| {
            j["wecomCalls"]["edges"].as_array().unwrap().iter().all(|c| c["node"]["status"] == "DONE")
                && count(j, "CUSTOMER", "ACCEPTED") == 1
                && count(j, "GROUP", "TRANSFERRED") == i64::from(GROUPS)
        })
        .await;
        assert_eq!(fake.calls(fake::RESIGNED_CUSTOMERS), 2, "one refused as busy, one carried out");
        assert!(fake.transfers_per_customer().values().all(|n| *n == 1), "{j}");
        assert!(fake.moves_per_group().values().all(|n| *n == 1), "{j}");
        assert_eq!(count(&j, "CUSTOMER", "REQUESTED"), CUSTOMERS as i64 - 1, "{j}");
        api.stop().await;
    }
}

on_both_backends! {
    async fn an_on_job_handover_of_a_chosen_few_moves_only_them_through_the_on_job_api(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        let chosen: Vec<String> = [3, 7, 11]
            .iter()
            .map(|n| graphql::ids::encode("Customer", &customer(*n)).to_string())
            .chain([graphql::ids::encode("Customer", "wm-stranger").to_string()])
            .collect();
        fake.customer_answers(&customer(7), 1);
        let started = start(
            &api,
            json!({
                "staffId": departure::leaver().as_str(),
                "successorIds": [departure::successor(2).as_str()],
                "strategy": "SINGLE",
                "kind": "ON_JOB",
                "customerIds": chosen,
                "idempotencyKey": Uuid::new_v4().to_string(),
            }),
        )
        .await;
        assert_eq!(started["userErrors"], json!([]), "{started}");
        let id = started["job"]["id"].as_str().unwrap().to_string();
        let j = until(&api, &id, "the chosen few handed over", |j| {
            j["status"] == "SUCCEEDED" && count(j, "CUSTOMER", "ACCEPTED") == 1
        })
        .await;
        assert_eq!(count(&j, "CUSTOMER", "REQUESTED"), 2, "{j}");
        assert_eq!(count(&j, "CUSTOMER", "NOT_A_FRIEND"), 1, "the stranger is reported: {j}");
        assert_eq!(count(&j, "GROUP", "TRANSFERRED") + count(&j, "GROUP", "SENT"), 0, "{j}");
        assert_eq!(fake.calls(fake::ON_JOB_CUSTOMERS), 1);
        assert_eq!(fake.calls(fake::RESIGNED_CUSTOMERS), 0);
        let moved: BTreeSet<String> = fake.transfers_per_customer().into_keys().collect();
        assert_eq!(moved, BTreeSet::from([customer(3), customer(7), customer(11)]));
        api.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choosing_no_customers_is_refused_with_the_field_named() {
    let fake = FakeWecom::start(CORP).await;
    let (_db, api) = world(TestDb::postgres().await, &fake).await;
    let started = start(
        &api,
        json!({
            "staffId": departure::leaver().as_str(),
            "successorIds": [departure::successor(2).as_str()],
            "kind": "ON_JOB",
            "customerIds": [],
            "idempotencyKey": Uuid::new_v4().to_string(),
        }),
    )
    .await;
    assert_eq!(
        started["userErrors"][0]["code"], "INVALID_INPUT",
        "{started}"
    );
    assert!(started["job"].is_null(), "{started}");
    assert_eq!(fake.calls(fake::ON_JOB_CUSTOMERS), 0);
    api.stop().await;
}

const UNASSIGNED: &str =
    "query($after: String) { wecomUnassignedCustomers(first: 2, after: $after) { \
    pageInfo { hasNextPage } edges { cursor node { staffId customerId departedAt \
    customer { id } } } } }";

on_both_backends! {
    citus;
    async fn operations_see_what_wecom_holds_for_departed_staff(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        let leaver = departure::leaver().to_string();
        fake.set_unassigned(&[
            (&leaver, &customer(0), 1_767_225_600),
            (&leaver, &customer(1), 1_767_225_600),
            ("someone-else", "wm-unknown-to-the-engine", 1_767_000_000),
        ]);
        let body = api.gql(Some(&ops()), UNASSIGNED, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
        let page = &body["data"]["wecomUnassignedCustomers"];
        assert_eq!(page["pageInfo"]["hasNextPage"], true, "{body}");
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 2);
        assert_eq!(edges[0]["node"]["staffId"], leaver.as_str());
        assert_eq!(edges[0]["node"]["departedAt"], "2026-01-01T00:00:00+00:00");
        assert!(!edges[0]["node"]["customer"].is_null(), "the engine knows them: {body}");
        let after = edges[1]["cursor"].clone();
        let body = api.gql(Some(&ops()), UNASSIGNED, json!({ "after": after })).await;
        let page = &body["data"]["wecomUnassignedCustomers"];
        assert_eq!(page["pageInfo"]["hasNextPage"], false, "{body}");
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{body}");
        assert!(edges[0]["node"]["customer"].is_null(), "{body}");
        // Guides do not see it; WeCom busy is said as such.
        let guide = harness::departure::guide(&departure::successor(0).to_string());
        let body = api.gql(Some(&guide), UNASSIGNED, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
        fake.fail(Some(Failure::Errcode(45009)));
        let body = api.gql(Some(&ops()), UNASSIGNED, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "WECOM_UNAVAILABLE", "{body}");
        api.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_wecom_api_the_unassigned_list_says_so_and_handovers_are_engine_only() {
    let (_db, api) = world_with(TestDb::postgres().await, 5, 0, |_| {}).await;
    let body = api.gql(Some(&ops()), UNASSIGNED, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "WECOM_NOT_CONFIGURED",
        "{body}"
    );
    let id = hand_over(&api).await;
    let j = until(&api, &id, "succeeded", |j| j["status"] == "SUCCEEDED").await;
    assert_eq!(j["wecomMode"], "ENGINE_ONLY", "{j}");
    assert_eq!(j["wecomCalls"]["edges"], json!([]), "{j}");
    api.stop().await;
}
