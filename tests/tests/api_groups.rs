//! Customer groups on both backends, for a registered tenant whose own group capacity
//! applies: operations create a guide's group, the guide fills it, and the tenant's
//! capacity (read from `tenants`, an `integer` on PostgreSQL) refuses one too many.

use engine::auth::Role;
use harness::live::{token, TestApi};
use harness::on_both_backends;
use projections::on_pool;
use serde_json::json;
use uuid::Uuid;

on_both_backends! {
    async fn a_guides_group_fills_up_to_the_tenants_capacity(db: TestDb) {
        // Given a tenant whose groups hold three members (the owner is one), and a guide
        db.seed_tiny(&[("acme", 1)]).await;
        let api = TestApi::start(&db).await;
        api.settle().await;
        on_pool!(&api.engine.db, |pool| {
            sqlx::query("UPDATE tenants SET group_capacity = 3 WHERE tenant_id = 'acme'")
                .execute(pool)
                .await
                .map(|_| ())
        })
        .unwrap();
        let served: Vec<(String, String)> = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT staff_id, customer_id FROM rm_staff_customer WHERE tenant_id = 'acme' \
                 AND staff_id = (SELECT staff_id FROM rm_staff_customer WHERE tenant_id = 'acme' \
                 GROUP BY staff_id ORDER BY count(*) DESC, staff_id LIMIT 1) \
                 ORDER BY customer_id LIMIT 3",
            )
            .fetch_all(pool)
            .await
        })
        .unwrap();
        assert_eq!(served.len(), 3, "the busiest guide serves three customers");
        let guide = served[0].0.clone();
        let ops = token("acme", Role::Operations, None, &[]);
        let me = token("acme", Role::Guide, Some(&guide), &[]);

        // when operations create a group for the guide
        let body = api
            .gql(
                Some(&ops),
                "mutation($i: CreateCustomerGroupInput!) { createCustomerGroup(input: $i) { id userErrors { code } } }",
                json!({ "i": { "ownerStaffId": guide, "name": "金饰老客群", "idempotencyKey": Uuid::new_v4().to_string() } }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(body["data"]["createCustomerGroup"]["userErrors"], json!([]), "{body}");
        let group = body["data"]["createCustomerGroup"]["id"].as_str().unwrap().to_string();
        api.settle().await;

        // and the guide adds three of their customers
        let mut codes = Vec::new();
        for (_, customer) in &served {
            let body = api
                .gql(
                    Some(&me),
                    "mutation($i: AddCustomerToGroupInput!) { addCustomerToGroup(input: $i) { userErrors { code } } }",
                    json!({ "i": { "customerId": graphql::ids::encode("Customer", customer).to_string(),
                                   "groupId": group, "idempotencyKey": Uuid::new_v4().to_string() } }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            codes.push(body["data"]["addCustomerToGroup"]["userErrors"][0]["code"].clone());
        }

        // then two join and the third is refused by the tenant's capacity.
        assert_eq!(codes, [json!(null), json!(null), json!("GROUP_FULL")]);
        api.stop().await;
    }
}
