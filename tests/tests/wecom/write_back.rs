//! A guide's tag and remark edits written back to WeCom (issue 16): the edit and its
//! `mark_tag` / `remark` call are written together, the call reaches the fake WeCom
//! over HTTP and changes what WeCom holds, the notice WeCom sends about the customer
//! (before or after our call landed) neither undoes the edit nor records it twice, and
//! an edit WeCom refuses is taken back with WeCom's reason kept. The tag library changes
//! in WeCom first, and a new tag carries the id WeCom gave it.

use engine::auth::Role;
use engine::wecom_writes::{MARK_TAG, REMARK};
use harness::fake_wecom::{writes, Failure, FakeWecom};
use harness::live::{token, TestApi};
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;
use wecom::OutboundSettings;

use super::callbacks::{
    base64_url, configured_with_api, contact, contact_answer, events, portrait, post_ok,
    seed_customer, seed_library, settled, tag, tag_groups, types_of, wecom_library, CORP, T, T0,
};

fn guide() -> String {
    token(T, Role::Guide, Some("zhangsan"), &[])
}

async fn edit(api: &TestApi, mutation: &str, input: Value) {
    let name = mutation.split_whitespace().next().unwrap();
    let query = format!(
        "mutation($i: {}Input!) {{ {name}(input: $i) {{ userErrors {{ code message }} }} }}",
        {
            let mut c = name.chars();
            c.next().unwrap().to_uppercase().collect::<String>() + c.as_str()
        }
    );
    let mut input = input;
    input["customerId"] = json!(base64_url("Customer:woLI"));
    input["idempotencyKey"] = json!(Uuid::new_v4().to_string());
    let body = api.gql(Some(&guide()), &query, json!({ "i": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"][name]["userErrors"], json!([]), "{body}");
}

/// Sends every due call now, as the server's outbound tick does.
async fn send(api: &TestApi) -> usize {
    wecom::outbound::send_due(
        &api.engine,
        &api.wecom,
        &OutboundSettings::default(),
        api.clock.now(),
    )
    .await
    .unwrap()
}

/// `(api, status, answer)` of every call about the customer, oldest first.
async fn calls(api: &TestApi) -> Vec<(String, String, Option<String>)> {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT api, status, answer FROM wecom_outbox WHERE tenant_id = $1 \
             AND subject = 'woLI' ORDER BY created_at, call_id",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

fn tag_ids(relation: &Value) -> Vec<String> {
    let mut ids: Vec<String> = relation["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// A friend of zhangsan tagged Silver, in the engine and in WeCom.
async fn world(db: &TestDb, fake: &FakeWecom) -> TestApi {
    let api = configured_with_api(db, fake).await;
    seed_library(&api).await;
    fake.set_contact(
        "woLI",
        contact_answer(
            "woLI",
            "",
            json!([{"group_name": "Tier", "tag_name": "Silver", "tag_id": "etSILVER", "type": 1}]),
        ),
    );
    seed_customer(&api, "woLI").await;
    api
}

on_both_backends! {
    async fn a_guides_edits_reach_wecom_and_their_echo_changes_nothing(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = world(&db, &fake).await;
        edit(&api, "tagCustomer", json!({ "tagId": "etGOLD" })).await;
        edit(&api, "setRemark", json!({ "remark": "王女士", "description": "喜欢足金" })).await;
        let before = types_of(&events(&api).await, "woLI");
        assert_eq!(before, ["FriendAdded", "Tagged", "Tagged", "RemarkChanged"]);
        let written: Vec<_> = calls(&api).await.into_iter().map(|(a, s, _)| (a, s)).collect();
        assert_eq!(
            written,
            [(MARK_TAG.to_string(), "pending".to_string()), (REMARK.to_string(), "pending".to_string())]
        );

        // WeCom notifies an edit before our calls landed: its state lacks them, and the
        // notice must not take them away.
        post_ok(&api, &contact("edit_external_contact", "zhangsan", "woLI", T0 + 10, "")).await;
        settled(&api).await;
        assert_eq!(types_of(&events(&api).await, "woLI"), before);

        assert_eq!(send(&api).await, 2);
        let relation = fake.relation("woLI", "zhangsan").unwrap();
        assert_eq!(tag_ids(&relation), ["etGOLD", "etSILVER"]);
        assert_eq!(relation["remark"], "王女士");
        assert_eq!(relation["description"], "喜欢足金");
        assert!(calls(&api).await.iter().all(|(_, s, _)| s == "done"));

        // The echo after they landed: WeCom's state is the log's, nothing is recorded twice.
        post_ok(&api, &contact("edit_external_contact", "zhangsan", "woLI", T0 + 20, "")).await;
        settled(&api).await;
        assert_eq!(types_of(&events(&api).await, "woLI"), before);
        api.settle().await;
        let p = portrait(&api, "woLI").await;
        assert_eq!(p["staff"]["nodes"][0]["remark"], "王女士");
        let tags: Vec<&str> = p["tags"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tagId"].as_str().unwrap())
            .collect();
        assert_eq!(tags.len(), 2, "{p}");
        assert!(tags.contains(&"etGOLD") && tags.contains(&"etSILVER"), "{p}");
    }
}

on_both_backends! {
    async fn an_edit_wecom_refuses_is_taken_back_a_busy_wecom_asked_again_a_stale_token_renewed(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = world(&db, &fake).await;
        fake.refuse_tag("etGOLD");
        edit(&api, "tagCustomer", json!({ "tagId": "etGOLD" })).await;
        assert_eq!(send(&api).await, 1);
        let log = events(&api).await;
        assert_eq!(
            types_of(&log, "woLI"),
            ["FriendAdded", "Tagged", "Tagged", "Untagged"],
            "the refused tag is taken back"
        );
        let (_, status, answer) = calls(&api).await.remove(0);
        assert_eq!(status, "done");
        assert!(answer.unwrap().contains(&writes::INVALID_TAG.to_string()));
        api.settle().await;
        let p = portrait(&api, "woLI").await;
        assert_eq!(p["tags"]["nodes"].as_array().unwrap().len(), 1, "{p}");
        // Sending it again changes nothing: the answer is on record.
        assert_eq!(send(&api).await, 0);

        // WeCom busy: the remark waits, and lands on a later attempt.
        fake.fail(Some(Failure::Errcode(45009)));
        edit(&api, "setRemark", json!({ "remark": "VIP" })).await;
        assert_eq!(send(&api).await, 0);
        fake.fail(None);
        assert_eq!(send(&api).await, 0, "not due before its backoff");
        api.clock.advance(chrono::Duration::minutes(1));
        assert_eq!(send(&api).await, 1);
        assert_eq!(fake.relation("woLI", "zhangsan").unwrap()["remark"], "VIP");

        // WeCom drops the token early (42001): a fresh one is fetched and the call lands.
        let tokens = fake.tokens_issued();
        fake.expire_token();
        edit(&api, "setRemark", json!({ "remark": "VIP 2" })).await;
        assert_eq!(send(&api).await, 1);
        assert_eq!(fake.tokens_issued(), tokens + 1);
        assert_eq!(fake.relation("woLI", "zhangsan").unwrap()["remark"], "VIP 2");
    }
}

async fn library_events(api: &TestApi) -> Vec<String> {
    types_of(&events(api).await, "library")
}

/// An operations mutation on the library: its payload.
async fn ops_change(api: &TestApi, name: &str, input: Value) -> Value {
    let ty = {
        let mut c = name.chars();
        c.next().unwrap().to_uppercase().collect::<String>() + c.as_str()
    };
    let query = format!(
        "mutation($i: {ty}Input!) {{ {name}(input: $i) {{ id userErrors {{ code message }} }} }}"
    );
    let mut input = input;
    input["idempotencyKey"] = json!(Uuid::new_v4().to_string());
    let ops = token(T, Role::Operations, None, &[]);
    let body = api.gql(Some(&ops), &query, json!({ "i": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"][name].clone()
}

on_both_backends! {
    async fn the_tag_library_changes_in_wecom_first_and_keeps_wecoms_ids(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        seed_library(&api).await;
        fake.set_tags(wecom_library("Gold", "Tier", (0, 0, 0)));
        let before = library_events(&api).await;

        let created = ops_change(&api, "createTag", json!({ "groupId": "egTIER", "name": "Platinum" })).await;
        assert_eq!(created["userErrors"], json!([]), "{created}");
        let id = fake.library_tag("Platinum").unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(created["id"], id.as_str(), "the tag carries WeCom's id");
        api.settle().await;
        let groups = tag_groups(&api).await.to_string();
        assert!(groups.contains(&id) && groups.contains("Platinum"), "{groups}");
        // WeCom's notice of our own create changes nothing.
        post_ok(&api, &tag("create", &id, "tag", T0 + 30)).await;
        settled(&api).await;
        let after_create = library_events(&api).await;
        assert_eq!(after_create.len(), before.len() + 1, "{after_create:?}");

        let renamed = ops_change(&api, "renameTag", json!({ "tagId": id, "name": "Platinum+" })).await;
        assert_eq!(renamed["userErrors"], json!([]), "{renamed}");
        assert!(fake.library_tag("Platinum+").is_some());
        let deleted = ops_change(&api, "deleteTag", json!({ "tagId": id })).await;
        assert_eq!(deleted["userErrors"], json!([]), "{deleted}");
        assert!(fake.library_tag("Platinum+").is_none(), "deleted in WeCom");
        // The delete notice of our own delete: applied, nothing recorded twice.
        post_ok(&api, &tag("delete", &id, "tag", T0 + 40)).await;
        settled(&api).await;
        let rows: Vec<(String,)> = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as("SELECT status FROM wecom_inbox WHERE tenant_id = $1")
                .bind(T)
                .fetch_all(pool)
                .await
        })
        .unwrap();
        assert!(rows.iter().all(|(s,)| s == "processed"), "{rows:?}");
        let end = library_events(&api).await;
        assert_eq!(&end[end.len() - 2..], ["TagRenamed", "TagDeleted"], "{end:?}");
        assert_eq!(end.len(), before.len() + 3);

        // WeCom refuses a name taken in the group: a user error, nothing recorded.
        let refused = ops_change(&api, "createTag", json!({ "groupId": "egTIER", "name": "Gold" })).await;
        assert_eq!(refused["userErrors"][0]["code"], "WECOM_REFUSED", "{refused}");
        assert_eq!(library_events(&api).await.len(), end.len());
        // WeCom has no empty groups.
        let group = ops_change(&api, "createTagGroup", json!({ "name": "Empty" })).await;
        assert_eq!(group["userErrors"][0]["code"], "INVALID_INPUT", "{group}");
        assert_eq!(fake.calls(harness::fake_wecom::library::ADD), 2);
    }
}
