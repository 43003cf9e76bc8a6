//! The portrait cache (docs/adr/0025-portrait-cache.md): portraits served from memory
//! are forgotten by a guide's own write (read your writes), by any commit of the
//! projection announced on PostgreSQL (a rename through another path, a rebuild's
//! swap of one tenant or of everything), and a guide still never sees another guide's
//! customer, with and without the cache.

use std::time::Duration;

use engine::auth::Role;
use harness::live::{token, TestApi};
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use harness::TestDb;
use projections::on_pool;
use projections::rebuild::{rebuild_with, Options, Scope};
use serde_json::{json, Value};
use uuid::Uuid;

const PORTRAIT: &str = "query($id: ID!) { customer(id: $id) { name stage \
    tags(first: 20) { edges { node { name } } } \
    timeline(first: 5) { edges { node { summary } } } } }";

/// A guide, one of their customers (with a tag) and the guide's store.
async fn guide_and_customer(api: &TestApi) -> (String, String, String, String) {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT r.staff_id, r.customer_id, s.store_id, t.tag_id FROM rm_customer_staff r \
             JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
             JOIN rm_customer_tag t ON t.tenant_id = r.tenant_id AND t.customer_id = r.customer_id \
             WHERE r.tenant_id = 'acme' AND s.departed_at IS NULL \
             ORDER BY r.customer_id, r.staff_id, t.tag_id LIMIT 1",
        )
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

async fn wait_until_live(api: &TestApi) {
    for _ in 0..250 {
        if api.engine.portraits.is_live() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the portrait cache never started listening");
}

fn hits(api: &TestApi) -> u64 {
    api.engine
        .portraits
        .stats
        .hits
        .load(std::sync::atomic::Ordering::Relaxed)
}

async fn portrait(api: &TestApi, token: &str, id: &str) -> Value {
    let body = api.gql(Some(token), PORTRAIT, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["customer"].clone()
}

async fn set_name(api: &TestApi, customer: &str, name: &str) {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query(
            "UPDATE rm_customer SET name = $1 WHERE tenant_id = 'acme' AND customer_id = $2",
        )
        .bind(name)
        .bind(customer)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .unwrap();
}

/// Reads until `check` holds, for up to 5 s: an announcement arrives after its commit.
async fn eventually(api: &TestApi, token: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        last = portrait(api, token, id).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never held: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_portrait_is_forgotten_by_a_write_an_announced_commit_and_a_rebuild() {
    let (db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    wait_until_live(&api).await;
    let (guide, customer, _store, tag) = guide_and_customer(&api).await;
    let me = token("acme", Role::Guide, Some(&guide), &[]);
    let admin = token("acme", Role::Admin, None, &[]);
    let id = graphql::ids::encode("Customer", &customer).to_string();

    // Served from memory: the second read is a hit, and a change written behind the
    // projection's back (announced by nobody) is not seen.
    let first = portrait(&api, &me, &id).await;
    let before = hits(&api);
    assert_eq!(portrait(&api, &me, &id).await, first);
    assert!(
        hits(&api) > before,
        "the second read was not served from memory"
    );
    set_name(&api, &customer, "未经投影的名字").await;
    assert_eq!(portrait(&api, &me, &id).await["name"], first["name"]);

    // Read your writes: the guide's remark is in the very next portrait's timeline.
    let remark = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { userErrors { code } } }";
    let vars = json!({ "i": { "customerId": id, "remark": "缓存之后的备注",
        "idempotencyKey": Uuid::new_v4().to_string() } });
    let body = api.gql(Some(&me), remark, vars).await;
    assert_eq!(body["data"]["setRemark"]["userErrors"], json!([]), "{body}");
    let after = portrait(&api, &me, &id).await;
    let newest = after["timeline"]["edges"][0]["node"]["summary"]
        .as_str()
        .unwrap();
    assert!(newest.contains("缓存之后的备注"), "{after}");

    // A tag renamed by an admin reaches the guide's cached portrait through the
    // projection's announcement alone (nothing in the rename's path forgets it).
    portrait(&api, &me, &id).await;
    let rename = "mutation($i: RenameTagInput!) { renameTag(input: $i) { userErrors { code } } }";
    let vars = json!({ "i": { "tagId": tag, "name": "缓存里改名的标签",
        "idempotencyKey": Uuid::new_v4().to_string() } });
    let body = api.gql(Some(&admin), rename, vars).await;
    assert_eq!(body["data"]["renameTag"]["userErrors"], json!([]), "{body}");
    eventually(&api, &me, &id, |p| {
        p["tags"].to_string().contains("缓存里改名的标签")
    })
    .await;

    // A rebuild's swap, of the tenant and then of everything: a portrait read from
    // rows that were wrong is replaced by the rebuilt one.
    for scope in [Scope::Tenant("acme".into()), Scope::All] {
        set_name(&api, &customer, "重建之前的名字").await;
        api.engine.portraits.forget_customer("acme", &customer);
        assert_eq!(portrait(&api, &me, &id).await["name"], "重建之前的名字");
        assert_eq!(portrait(&api, &me, &id).await["name"], "重建之前的名字");
        let options = Options {
            scope: scope.clone(),
            ..Options::default()
        };
        rebuild_with(&api.engine.db, &projections::rebuild::all(), &options)
            .await
            .unwrap();
        eventually(&api, &me, &id, |p| p["name"] == first["name"]).await;
    }
    drop(db);
}

// Guide A's customer, a guide B of another store who does not serve them, and the
// store managers of both stores, asked of a server with the cache and one without.
on_both_backends! {
    async fn a_guide_never_sees_another_guides_customer_with_or_without_the_cache(db: TestDb) {
        let (db, cached) = served(db, ONE_TENANT).await;
        let uncached = TestApi::start_with(&db, |s| s.portrait_cache_bytes = 0).await;
        let (a, customer, store_a, _) = guide_and_customer(&cached).await;
        let (b, store_b): (String, String) = on_pool!(&cached.engine.db, |pool| {
            sqlx::query_as(
                "SELECT s.staff_id, s.store_id FROM rm_staff s WHERE s.tenant_id = 'acme' \
                 AND s.departed_at IS NULL AND s.store_id <> $1 AND NOT EXISTS \
                 (SELECT 1 FROM rm_customer_staff r JOIN rm_staff o ON o.tenant_id = r.tenant_id \
                  AND o.staff_id = r.staff_id WHERE r.tenant_id = 'acme' \
                  AND r.customer_id = $2 AND o.store_id = s.store_id) \
                 ORDER BY s.staff_id LIMIT 1",
            )
            .bind(&store_a)
            .bind(&customer)
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let guide_a = token("acme", Role::Guide, Some(&a), &[&store_a]);
        let guide_b = token("acme", Role::Guide, Some(&b), &[&store_b]);
        let manager_a = token("acme", Role::StoreManager, None, &[&store_a]);
        let manager_b = token("acme", Role::StoreManager, None, &[&store_b]);
        let other_tenant = token("globex", Role::Admin, None, &[]);
        if matches!(cached.engine.db, engine::db::Database::Postgres(_)) {
            wait_until_live(&cached).await;
        }
        for api in [&cached, &uncached] {
            for _ in 0..2 {
                // A's read first, so the others ask while A's portrait is in memory.
                assert!(portrait(api, &guide_a, &id).await["name"].is_string());
                assert!(portrait(api, &manager_a, &id).await.is_object());
                assert_eq!(portrait(api, &guide_b, &id).await, Value::Null);
                assert_eq!(portrait(api, &manager_b, &id).await, Value::Null);
                assert_eq!(portrait(api, &other_tenant, &id).await, Value::Null);
            }
        }
        if matches!(cached.engine.db, engine::db::Database::Postgres(_)) {
            assert!(hits(&cached) > 0, "the cached server never served from memory");
        }
        assert_eq!(hits(&uncached), 0);
    }
}
