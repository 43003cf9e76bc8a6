//! The corp's WeCom directory as the engine's staff (issue 16): a sync from the fake
//! WeCom over HTTP through the real server and client registers, moves and departs
//! staff once; operations map departments to stores, and only they, in their tenant;
//! `change_contact` notices over the callback endpoint do the same one member of staff or
//! department at a time, and a deleted member's token is refused.

use std::time::{Duration, Instant};

use engine::auth::Role;
use harness::fake_wecom::{self, Failure, FakeWecom};
use harness::live::{error_code, token, TestApi};
use harness::{on_both_backends, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

use super::callbacks::{configured_with_api, events, inbox_rows, post_ok, settled, CORP, T, T0};

const SYNC: &str = "mutation S($key: String!) { syncWecomDirectory(input: \
    { idempotencyKey: $key }) { job { id } userErrors { code } } }";
const JOB: &str = "query J($id: ID!) { job(id: $id) { status progressDone progressTotal \
    errorCode } }";
const MAP: &str = "mutation M($input: MapWecomDepartmentInput!) { \
    mapWecomDepartment(input: $input) { id userErrors { code field } } }";
const DEPARTMENTS: &str = "{ wecomDepartments(first: 50) { edges { node { departmentId \
    name parentId storeId staffStoreId } } } }";

fn ops(tenant: &str) -> String {
    token(tenant, Role::Operations, None, &[])
}

/// Root 1 with North (2) and South (3) under it, and South mall (4) under South.
fn departments() -> Value {
    json!([
        {"id": 1, "name": "Corp", "name_en": "Corp", "parentid": 0, "order": 100},
        {"id": 2, "name": "North", "parentid": 1, "order": 1},
        {"id": 3, "name": "South", "parentid": 1, "order": 2},
        {"id": 4, "name": "South mall", "parentid": 3, "order": 1}
    ])
}

fn user(n: usize, department: i64, status: i64) -> Value {
    json!({"userid": format!("guide{n:02}"), "name": format!("Guide {n}"),
           "department": [1, department], "main_department": department,
           "position": "导购", "status": status, "gender": "2", "avatar": "http://x"})
}

/// `count` staff spread over departments 2, 3 and 4.
fn users(count: usize) -> Vec<Value> {
    (0..count).map(|n| user(n, 2 + (n % 3) as i64, 1)).collect()
}

/// A fake corp of `users` in [`departments`], and a server whose tenant reads it.
async fn corp(db: &TestDb, users: Vec<Value>) -> (FakeWecom, TestApi) {
    let fake = FakeWecom::start(CORP).await;
    fake.set_departments(departments());
    fake.set_users(json!(users));
    let api = configured_with_api(db, &fake).await;
    (fake, api)
}

async fn map(api: &TestApi, bearer: &str, department: i64, store: &str) -> Value {
    let input = json!({ "departmentId": department, "storeId": store,
                        "idempotencyKey": Uuid::new_v4().to_string() });
    api.gql(Some(bearer), MAP, json!({ "input": input })).await
}

/// Starts a sync as operations and waits for the job to end: its row as `job` answers.
async fn sync(api: &TestApi) -> Value {
    let key = Uuid::new_v4().to_string();
    let started = api.gql(Some(&ops(T)), SYNC, json!({ "key": key })).await;
    let id = started["data"]["syncWecomDirectory"]["job"]["id"].clone();
    assert!(id.is_string(), "{started}");
    let since = Instant::now();
    loop {
        let body = api.gql(Some(&ops(T)), JOB, json!({ "id": id })).await;
        let job = body["data"]["job"].clone();
        if matches!(job["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
            return job;
        }
        assert!(since.elapsed() < Duration::from_secs(30), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(staff, event type, store)` of every staff event, in log order.
async fn staff_log(api: &TestApi) -> Vec<(String, String, Option<String>)> {
    events(api)
        .await
        .into_iter()
        .filter(|(_, t, _)| t.starts_with("Staff"))
        .map(|(stream, t, payload)| {
            let body = &payload[&t];
            let store = body["store"].as_str().or(body["to"].as_str());
            let staff = stream.split_once(':').unwrap().1.to_string();
            (staff, t, store.map(str::to_string))
        })
        .collect()
}

on_both_backends! {
    async fn a_directory_of_fifty_is_synced_once_however_often_it_runs(db: TestDb) {
        // Given a corp of 50 staff in three departments, North mapped to a store
        let (fake, api) = corp(&db, users(50)).await;
        let mapped = map(&api, &ops(T), 2, "north-1").await;
        assert_eq!(mapped["data"]["mapWecomDepartment"]["id"], "2", "{mapped}");

        // when operations sync the directory twice
        let first = sync(&api).await;
        let once = staff_log(&api).await;
        let second = sync(&api).await;

        // then everyone is registered once, in their department's store, and the
        // second run appends nothing.
        assert_eq!(first, json!({"status": "SUCCEEDED", "progressDone": 50,
            "progressTotal": 50, "errorCode": null}));
        assert_eq!(second["status"], "SUCCEEDED", "{second}");
        assert_eq!(staff_log(&api).await, once);
        assert_eq!(once.len(), 50);
        assert!(once.iter().all(|(_, t, _)| t == "StaffRegistered"));
        let store = |n: usize| once.iter().find(|(s, _, _)| *s == format!("guide{n:02}"))
            .unwrap().2.clone().unwrap();
        assert_eq!((store(0), store(1), store(2)), ("north-1".into(), "dept-3".into(),
            "dept-4".into()));
        assert_eq!(fake.calls(fake_wecom::USER_LIST), 2);

        // and operations see the departments with their stores.
        let listed = api.gql(Some(&ops(T)), DEPARTMENTS, json!({})).await;
        let nodes: Vec<Value> = listed["data"]["wecomDepartments"]["edges"].as_array()
            .unwrap().iter().map(|e| e["node"].clone()).collect();
        assert_eq!(nodes.len(), 4, "{listed}");
        assert_eq!(nodes[1], json!({"departmentId": 2, "name": "North", "parentId": 1,
            "storeId": "north-1", "staffStoreId": "north-1"}));
        assert_eq!(nodes[3]["staffStoreId"], "dept-4");
        api.stop().await;
    }
}

on_both_backends! {
    /// The console shows stores by name: a mapped store by its department's name, a
    /// `dept-<id>` store by that department's, any other store by its id.
    async fn staff_show_their_stores_by_the_directorys_names(db: TestDb) {
        let (_fake, api) = corp(&db, users(3)).await;
        map(&api, &ops(T), 2, "north-1").await;
        assert_eq!(sync(&api).await["status"], "SUCCEEDED");
        // A guide registered outside the directory, in a store no department names.
        api.engine
            .staff
            .execute(
                &domain::stamp::stream_id(&harness::ids::tenant(T), "solo"),
                domain::stamp::Stamped::new(
                    api.clock.now(),
                    domain::staff::StaffCommand::Register {
                        name: "Solo".into(),
                        store: domain::values::StoreId::parse("store-7").unwrap(),
                        title: "导购".into(),
                    },
                ),
                &engine::commands::CommandMeta::new(
                    harness::ids::tenant(T),
                    engine::commands::Actor::operator("test"),
                    Uuid::new_v4(),
                ),
            )
            .await
            .unwrap();
        api.settle().await;

        let body = api
            .gql(
                Some(&ops(T)),
                "{ staffMembers(first: 10) { nodes { staffId storeId storeName } } }",
                json!({}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let stores: Vec<(String, String, String)> = body["data"]["staffMembers"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let s = |k: &str| n[k].as_str().unwrap().to_string();
                (s("staffId"), s("storeId"), s("storeName"))
            })
            .collect();
        let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            stores,
            [
                row("guide00", "north-1", "North"),
                row("guide01", "dept-3", "South"),
                row("guide02", "dept-4", "South mall"),
                row("solo", "store-7", "store-7"),
            ]
        );
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_move_changes_the_store_and_the_gone_depart(db: TestDb) {
        // Given a synced corp of 6
        let (fake, api) = corp(&db, users(6)).await;
        sync(&api).await;
        let before = staff_log(&api).await.len();

        // when guide00 moves from North to South, guide01 leaves the directory and
        // guide02 is marked exited
        let mut now = users(6);
        now[0] = user(0, 3, 1);
        now[2] = user(2, 4, 5);
        now.remove(1);
        fake.set_users(json!(now));
        let job = sync(&api).await;

        // then exactly those three changes are appended
        assert_eq!(job["progressTotal"], 6, "{job}");
        let log = staff_log(&api).await;
        assert_eq!(
            log[before..].to_vec(),
            vec![
                ("guide00".into(), "StaffMovedToStore".into(), Some("dept-3".into())),
                ("guide01".into(), "StaffDeparted".into(), None),
                ("guide02".into(), "StaffDeparted".into(), None),
            ]
        );
        // and a sync after that appends nothing.
        sync(&api).await;
        assert_eq!(staff_log(&api).await.len(), log.len());
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_sync_wecom_refuses_fails_with_the_reason_and_changes_nothing(db: TestDb) {
        // Given a corp whose API answers "frequency limit" (45009)
        let (fake, api) = corp(&db, users(3)).await;
        fake.fail(Some(Failure::Errcode(45009)));
        // when operations sync, then the job fails with the reason and nothing is applied.
        let job = sync(&api).await;
        assert_eq!(job["status"], "FAILED", "{job}");
        assert_eq!(job["errorCode"], "WECOM_API");
        assert!(staff_log(&api).await.is_empty());
        assert_eq!(fake.calls(fake_wecom::DEPARTMENT_LIST), 1);
        api.stop().await;
    }
}

on_both_backends! {
    async fn only_operations_map_departments_and_only_in_their_tenant(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        for tenant in [T, "acme"] {
            wecom::directory::upsert_department(
                &api.engine.db, &harness::ids::tenant(tenant), 2, Some("North"), Some(1),
                None, api.clock.now(),
            )
            .await
            .unwrap();
        }
        // A guide may neither map nor list.
        let guide = token(T, Role::Guide, Some("guide00"), &["north-1"]);
        let refused = map(&api, &guide, 2, "north-1").await;
        assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");
        let refused = api.gql(Some(&guide), DEPARTMENTS, json!({})).await;
        assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");
        // A store id that is no id is the caller's to correct.
        let bad = map(&api, &ops(T), 2, "north 1").await;
        assert_eq!(bad["data"]["mapWecomDepartment"]["userErrors"][0]["code"], "INVALID_INPUT");

        // Operations of one tenant map their department 2 ...
        let done = map(&api, &ops(T), 2, "north-1").await;
        assert_eq!(done["data"]["mapWecomDepartment"]["userErrors"], json!([]), "{done}");

        // ... and another tenant's department 2 stays unmapped.
        let theirs = api.gql(Some(&ops("acme")), DEPARTMENTS, json!({})).await;
        assert_eq!(
            theirs["data"]["wecomDepartments"]["edges"],
            json!([{"node": {"departmentId": 2, "name": "North", "parentId": 1,
                "storeId": null, "staffStoreId": "dept-2"}}]),
            "{theirs}"
        );
        let ours = api.gql(Some(&ops(T)), DEPARTMENTS, json!({})).await;
        assert_eq!(ours["data"]["wecomDepartments"]["edges"][0]["node"]["storeId"], "north-1");
        api.stop().await;
    }
}

// ------------------------------------------------------------------ change_contact notices

/// A `change_contact` notice of `change` with `fields`, at `T0 + seconds`.
fn directory_notice(change: &str, seconds: i64, fields: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>\
         <FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
         <ChangeType>{change}</ChangeType>{fields}</xml>",
        T0 + seconds
    )
}

fn departments_listed(body: &Value) -> Vec<Value> {
    body["data"]["wecomDepartments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

on_both_backends! {
    async fn change_contact_notices_register_move_and_depart_staff_and_keep_departments(db: TestDb) {
        // Given a tenant whose department 2 is the store north-1
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        map(&api, &ops(T), 2, "north-1").await;

        // when WeCom reports a department created and renamed, a member created in it,
        // moved to department 2, edited without a move and deleted
        for notice in [
            directory_notice("create_party", 0,
                "<Id>5</Id><Name><![CDATA[East]]></Name><ParentId>1</ParentId><Order>3</Order>"),
            directory_notice("update_party", 1, "<Id>5</Id><Name><![CDATA[East mall]]></Name>"),
            directory_notice("create_user", 2,
                "<UserID><![CDATA[guide90]]></UserID><Name><![CDATA[Wang]]></Name>\
                 <Department><![CDATA[5]]></Department><MainDepartment>5</MainDepartment>\
                 <Position><![CDATA[导购]]></Position><Status>1</Status>"),
            directory_notice("update_user", 3,
                "<UserID><![CDATA[guide90]]></UserID><Department><![CDATA[2,5]]></Department>\
                 <MainDepartment>2</MainDepartment>"),
            directory_notice("update_user", 4,
                "<UserID><![CDATA[guide90]]></UserID><Name><![CDATA[Wang Wei]]></Name>"),
            directory_notice("delete_user", 5, "<UserID><![CDATA[guide90]]></UserID>"),
        ] {
            post_ok(&api, &notice).await;
        }
        settled(&api).await;
        let listed = departments_listed(&api.gql(Some(&ops(T)), DEPARTMENTS, json!({})).await);
        post_ok(&api, &directory_notice("delete_party", 6, "<Id>5</Id>")).await;
        settled(&api).await;

        // then the member's stream holds exactly those changes, at the notices' times
        assert_eq!(
            staff_log(&api).await,
            vec![
                ("guide90".into(), "StaffRegistered".into(), Some("dept-5".into())),
                ("guide90".into(), "StaffMovedToStore".into(), Some("north-1".into())),
                ("guide90".into(), "StaffDeparted".into(), None),
            ]
        );
        let rows = inbox_rows(&api).await;
        assert_eq!(rows.len(), 7, "{rows:?}");
        // Only the edit without a department maps to nothing, and says why.
        let unhandled: Vec<_> = rows.values().filter(|(_, status, _)| status != "processed")
            .collect();
        assert_eq!(unhandled.len(), 1, "{rows:?}");
        assert_eq!(unhandled[0].0, "change_contact/update_user");
        assert_eq!(unhandled[0].1, "unhandled");
        assert!(unhandled[0].2.as_deref().unwrap().contains("no Department"), "{rows:?}");
        // and the department was kept with its new name, then deleted.
        assert_eq!(
            listed,
            vec![json!({"departmentId": 5, "name": "East mall", "parentId": 1,
                "storeId": null, "staffStoreId": "dept-5"})]
        );
        let after = api.gql(Some(&ops(T)), DEPARTMENTS, json!({})).await;
        assert!(departments_listed(&after).is_empty(), "{after}");
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_deleted_members_token_is_refused_from_the_notice_on(db: TestDb) {
        // Given a guide the directory registered, holding a token
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        post_ok(&api, &directory_notice("create_user", 0,
            "<UserID><![CDATA[guide91]]></UserID><Name><![CDATA[Zhao]]></Name>\
             <Department><![CDATA[3]]></Department><MainDepartment>3</MainDepartment>")).await;
        settled(&api).await;
        let guide = token(T, Role::Guide, Some("guide91"), &["dept-3"]);
        let viewer = "{ viewer { subject } }";
        let body = api.gql(Some(&guide), viewer, json!({})).await;
        assert_eq!(body["data"]["viewer"]["subject"], "guide91", "{body}");

        // when WeCom reports them deleted
        post_ok(&api, &directory_notice("delete_user", 1,
            "<UserID><![CDATA[guide91]]></UserID>")).await;
        settled(&api).await;

        // then their token no longer gets in.
        let body = api.gql(Some(&guide), viewer, json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        api.stop().await;
    }
}

/// The fake's app, as a tenant's settings name it.
fn credentials_of(fake: &FakeWecom) -> wecom::client::Credentials {
    wecom::client::Credentials {
        corp_id: CORP.into(),
        secret: wecom::client::Secret::new(fake_wecom::CORP_SECRET),
        base_url: Some(fake.base.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_a_subtree_of_departments_and_its_staff() {
    use wecom::client::{ClientError, WecomApi};
    let fake = FakeWecom::start(CORP).await;
    fake.set_departments(departments());
    fake.set_users(json!(users(6)));
    let credentials = credentials_of(&fake);
    let client = WecomApi::default();
    let api = client.for_tenant(T, &credentials);

    let south: Vec<i64> = api
        .departments(Some(3))
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(south, [3, 4]);
    assert_eq!(api.departments(None).await.unwrap().len(), 4);
    // South and, with fetch_child, South mall: guides 1, 2, 4 and 5.
    let staff = api.users(3).await.unwrap();
    let ids: Vec<&str> = staff.iter().map(|u| u.userid.as_str()).collect();
    assert_eq!(ids, ["guide01", "guide02", "guide04", "guide05"]);
    assert_eq!(
        (staff[0].main_department(), staff[0].position.as_str()),
        (Some(3), "导购")
    );
    assert!(matches!(
        api.departments(Some(99)).await,
        Err(ClientError::Api { errcode: 60123, .. })
    ));
    // One token for all of it.
    assert_eq!(fake.tokens_issued(), 1);
}

/// Calls sent side by side from a cold cache share one token: each fetching its own
/// would end the others' (the fake, like WeCom may, honours only the newest) and every
/// call but one would answer 42001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_side_by_side_fetch_one_token_and_all_succeed() {
    use wecom::client::WecomApi;
    let fake = FakeWecom::start(CORP).await;
    fake.set_departments(departments());
    let credentials = credentials_of(&fake);
    let client = WecomApi::default();
    let api = client.for_tenant(T, &credentials);
    let answers = futures::future::join_all((0..8).map(|_| api.departments(None))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|d| d.len() == 4)),
        "{answers:?}"
    );
    assert_eq!(fake.tokens_issued(), 1);

    // A token WeCom ends early is fetched again once, not once per call in flight.
    fake.expire_token();
    let answers = futures::future::join_all((0..8).map(|_| api.departments(None))).await;
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
    assert_eq!(fake.tokens_issued(), 2);
}
