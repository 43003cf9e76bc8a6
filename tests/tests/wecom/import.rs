//! The first import (issue 16) end to end: an operations user starts it over HTTP, the
//! server's job reads a generated corp from the fake WeCom page by page, and the
//! customers, relations, tags and groups land in the log and the portrait stamped with
//! WeCom's times. Run twice, after a restart, or through a storm of 45009s, it appends
//! nothing twice.

use std::time::{Duration, Instant};

use engine::db::Database;
use harness::fake_wecom::{self, import, Corp, Failure, FakeWecom, Scheduled};
use harness::live::TestApi;
use harness::wecom_import::{configure, job, ops, start, CORP};
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use wecom::import::ImportSettings;

/// Short waits, so a storm or an outage is waited out in well under a second.
fn patient() -> ImportSettings {
    ImportSettings {
        tries: 3,
        first_pause: Duration::from_millis(5),
        max_pause: Duration::from_millis(20),
        wait: Duration::from_millis(300),
        ..ImportSettings::default()
    }
}

async fn server(db: &TestDb, fake: &FakeWecom) -> TestApi {
    let api = TestApi::start_with(db, |s| {
        s.tick_every = Duration::from_millis(100);
        s.wecom_import = patient();
    })
    .await;
    configure(&api, fake).await;
    api
}

async fn finished(api: &TestApi, id: &str, within: Duration) -> Value {
    harness::wecom_import::finished(api, id, within, Duration::from_millis(100), |_| {}).await
}

async fn count(db: &Database, sql: &str) -> i64 {
    on_pool!(db, |pool| sqlx::query_scalar(sql).fetch_one(pool).await).unwrap()
}

async fn all_events(db: &Database) -> i64 {
    count(db, "SELECT count(*) FROM events").await
}

async fn relation_events(db: &Database) -> i64 {
    count(
        db,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' AND event_type IN \
         ('FriendAdded', 'ProfileUpdated', 'RemarkChanged', 'Tagged')",
    )
    .await
}

/// The relation events the corp must come to: per relation a friend-add, a remark
/// when it has one and its enterprise tags; per customer one profile.
fn expected_relation_events(corp: &Corp) -> i64 {
    let mut events = corp.customers;
    for i in 0..corp.staff {
        for n in 0..corp.relations_of(i) {
            let k = corp.relation(i, n).customer;
            events += 1 + usize::from(!Corp::remark(k).is_empty()) + Corp::tags(k).len();
        }
    }
    events as i64
}

/// Pages of 100 relations the import reads when every page answers (the fake's pages
/// run on across the guides of one call).
fn pages(corp: &Corp) -> usize {
    (0..corp.staff)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| {
            let relations: usize = chunk.iter().map(|i| corp.relations_of(*i)).sum();
            relations.div_ceil(100).max(1)
        })
        .sum()
}

fn corp(staff: usize, customers: usize) -> Corp {
    Corp {
        staff,
        customers,
        shared_every: 10,
        groups: 12,
        members_per_group: 5,
    }
}

/// The portrait's name, first friend-add and relations of customer `k`, over HTTP.
async fn portrait(api: &TestApi, k: usize) -> Value {
    let id = graphql::ids::encode("Customer", &Corp::customer_id(k));
    let body = api
        .gql(
            Some(&ops()),
            "query($id: ID!) { customer(id: $id) { name firstAddedAt addWay \
             staff(first: 5) { edges { node { staffId addedAt remark } } } \
             tags(first: 10) { edges { node { tagId name } } } \
             timeline(first: 20) { edges { node { kind actor occurredAt } } } } }",
            json!({ "id": id.to_string() }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["customer"].clone()
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339()
}

on_both_backends! {
    /// 50 guides, 20,000 customers (22,000 relations) and 12 groups.
    async fn a_corp_is_imported_with_wecoms_times_and_names_and_a_second_run_adds_nothing(db: TestDb) {
        let corp = corp(50, 20_000);
        let fake = FakeWecom::start(CORP).await;
        fake.set_corp(corp);
        let api = server(&db, &fake).await;
        let db = &api.engine.db;

        let first = start(&api).await;
        let done = finished(&api, &first, Duration::from_secs(600)).await;
        let expected = expected_relation_events(&corp);
        assert_eq!(relation_events(db).await, expected);
        let import = &done["wecomImport"];
        assert_eq!(import["phase"], "done", "{done}");
        assert_eq!(import["relationsSeen"], corp.total_relations(), "{done}");
        assert_eq!(import["relationsImported"], corp.total_relations(), "{done}");
        assert_eq!(import["events"], expected, "{done}");
        assert_eq!(import["groups"], corp.groups, "{done}");
        assert_eq!((done["progressDone"].clone(), done["progressTotal"].clone()), (json!(50), json!(50)));
        assert!(done["ratePerSecond"].as_f64().unwrap() > 0.0, "{done}");
        assert!(import["relationsPerSecond"].as_f64().unwrap() > 0.0, "{done}");
        // Every imported event says so.
        assert_eq!(
            count(db, "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' \
                AND event_type = 'FriendAdded'").await,
            corp.total_relations() as i64
        );
        let group_events = count(db, "SELECT count(*) FROM events WHERE aggregate_type = 'CustomerGroup'").await;
        assert!(group_events >= corp.groups as i64, "{group_events}");
        assert_eq!(fake.calls(import::BY_USER), pages(&corp));

        api.settle().await;
        // Customer 1 has one guide; customer 20 follows guides 0 and 1.
        let one = portrait(&api, 1).await;
        assert_eq!(one["name"], "客户1", "{one}");
        let added = rfc3339(fake_wecom::import::EPOCH + 37);
        assert_eq!(one["firstAddedAt"], added, "{one}");
        assert_eq!(one["staff"]["edges"][0]["node"]["addedAt"], added, "{one}");
        let timeline = one["timeline"]["edges"].as_array().unwrap();
        assert!(timeline.iter().all(|e| e["node"]["actor"] == "integration:wecom-import"), "{one}");
        let friend_added = timeline.iter().find(|e| e["node"]["kind"] == "FriendAdded").unwrap();
        assert_eq!(friend_added["node"]["occurredAt"], added, "{one}");
        let shared = portrait(&api, 20).await;
        assert_eq!(shared["staff"]["edges"].as_array().unwrap().len(), 2, "{shared}");
        assert_eq!(shared["staff"]["edges"][0]["node"]["remark"], "VIP20", "{shared}");
        let tags: Vec<&str> = shared["tags"]["edges"].as_array().unwrap().iter()
            .map(|e| e["node"]["name"].as_str().unwrap_or("")).collect();
        assert!(tags.contains(&"Tag 2") && tags.contains(&"Tag 3"), "{shared}");

        // The last guide's customer 19,600 also follows guide 0, whose later relation
        // is imported first: acquisition is still the earliest friend-add.
        let wrapped = portrait(&api, 19_600).await;
        let earliest = rfc3339(fake_wecom::import::EPOCH + 19_600 * 37);
        assert_eq!(wrapped["firstAddedAt"], earliest, "{wrapped}");
        assert_eq!(wrapped["staff"]["edges"].as_array().unwrap().len(), 2, "{wrapped}");
        let acquired_by: String = on_pool!(db, |pool| sqlx::query_scalar(
            "SELECT staff_id FROM rm_funnel_customer WHERE customer_id = 'wmimp00019600'"
        ).fetch_one(pool).await).unwrap();
        assert_eq!(acquired_by, Corp::staff_id(49));

        let before = all_events(db).await;
        let second = start(&api).await;
        assert_ne!(second, first);
        let again = finished(&api, &second, Duration::from_secs(600)).await;
        assert_eq!(all_events(db).await, before, "a second import appended events");
        assert_eq!(again["wecomImport"]["relationsImported"], 0, "{again}");
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_45009_storm_and_a_restart_mid_import_append_nothing_twice(db: TestDb) {
        let corp = corp(10, 1_500);
        let fake = FakeWecom::start(CORP).await;
        fake.set_corp(corp);
        let tries = patient().tries as usize;
        // Page 3 meets a storm longer than the job's tries: it waits, then goes on.
        fake.schedule(Scheduled {
            path: import::BY_USER,
            from: 3,
            count: 2 * tries,
            failure: Failure::Errcode(45009),
        });
        // Further on, the gateway fails for a while: the server is restarted meanwhile.
        let outage_from = 3 + 2 * tries + 4;
        fake.schedule(Scheduled {
            path: import::BY_USER,
            from: outage_from,
            count: 3 * tries,
            failure: Failure::Status500,
        });
        let api = server(&db, &fake).await;
        let id = start(&api).await;
        let started = Instant::now();
        let waiting = loop {
            let job = job(&api, &id).await;
            if job["errorCode"] == "WAITING_FOR_WECOM"
                && fake.calls(import::BY_USER) >= outage_from
            {
                break job;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never waited: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(waiting["status"], "RUNNING", "{waiting}");
        assert!(waiting["wecomImport"]["throttled"].as_i64().unwrap() >= 2 * tries as i64, "{waiting}");
        api.stop().await;
        let partial = relation_events(&db.db).await;
        assert!(partial > 0 && partial < expected_relation_events(&corp), "{partial}");

        // A new server resumes the job where it stopped.
        let api = server(&db, &fake).await;
        let done = finished(&api, &id, Duration::from_secs(120)).await;
        assert_eq!(relation_events(&api.engine.db).await, expected_relation_events(&corp), "{done}");
        assert_eq!(
            count(&api.engine.db, "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' \
                AND event_type = 'FriendAdded'").await,
            corp.total_relations() as i64
        );
        // Every page was read once, save the failed calls and at most the page the
        // restart cut short.
        let failed = 2 * tries + 3 * tries;
        let calls = fake.calls(import::BY_USER);
        assert!(calls <= pages(&corp) + failed + 1, "{calls} calls for {} pages", pages(&corp));
        api.stop().await;
    }
}
