//! The API on both backends: the embedded SQLite default serves the same answers as
//! PostgreSQL for a guide's day (list, portrait, timeline, a change and its replay).

use engine::auth::Role;
use harness::live::token;
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::json;
use uuid::Uuid;

on_both_backends! {
    citus;
    async fn a_guide_lists_opens_and_changes_a_customer(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let (guide, served): (String, i64) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT staff_id, count(*) FROM rm_customer_staff WHERE tenant_id = 'acme' \
                 GROUP BY staff_id ORDER BY count(*) DESC, staff_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let body = api
            .gql(
                Some(&me),
                "{ customers(first: 50, filter: {stages: [FRIEND, FIRST_PURCHASE, REPURCHASE, LOYAL, LOST]}) { \
                   edges { node { id externalUserId stage timeline(first: 3) { edges { node { kind summary } } } } } } }",
                json!({}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let edges = body["data"]["customers"]["edges"].as_array().unwrap();
        assert_eq!(edges.len() as i64, served.min(50));
        let first = &edges[0]["node"];
        assert!(!first["timeline"]["edges"].as_array().unwrap().is_empty());
        let id = first["id"].as_str().unwrap();
        let key = Uuid::new_v4().to_string();
        let change = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { replayed userErrors { code } \
            customer { staff(first: 10) { edges { node { staffId remark } } } } } }";
        let vars = json!({ "i": { "customerId": id, "remark": "prefers gold", "idempotencyKey": key } });
        let body = api.gql(Some(&me), change, vars.clone()).await;
        assert!(body.to_string().contains("prefers gold"), "{body}");
        let again = api.gql(Some(&me), change, vars).await;
        assert_eq!(again["data"]["setRemark"]["replayed"], true, "{again}");
        api.stop().await;
    }
}
