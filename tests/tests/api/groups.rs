//! Customer groups and staff limits on both backends, for a registered tenant:
//! operations set the tenant's group capacity and a guide's customer limit, create the
//! guide's group, the guide fills it, and the capacity (read back from `tenants`, an
//! `integer` on PostgreSQL) refuses one too many.

use engine::auth::Role;
use harness::live::token;
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::json;
use uuid::Uuid;

on_both_backends! {
    citus;
    async fn a_guides_group_fills_up_to_the_tenants_capacity(db: TestDb) {
        // Given a guide with customers
        let (_db, api) = served(db, ONE_TENANT).await;
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

        // Operations set the capacity (out-of-range values are refused with the rule)
        for (capacity, code) in [(0, json!("INVALID_CAPACITY")), (2001, json!("INVALID_CAPACITY")), (3, json!(null))] {
            let body = api
                .gql(
                    Some(&ops),
                    "mutation($i: SetGroupCapacityInput!) { setGroupCapacity(input: $i) { userErrors { code } } }",
                    json!({ "i": { "capacity": capacity, "idempotencyKey": Uuid::new_v4().to_string() } }),
                )
                .await;
            assert_eq!(body["data"]["setGroupCapacity"]["userErrors"][0]["code"], code, "{body}");
        }
        // and the guide's customer limit, which the staff view then shows; a guide may not.
        let set_limit = "mutation($i: SetCustomerLimitInput!) { setCustomerLimit(input: $i) { userErrors { code } } }";
        let limit = |n: i64| json!({ "i": { "staffId": guide, "limit": n, "idempotencyKey": Uuid::new_v4().to_string() } });
        let body = api.gql(Some(&ops), set_limit, limit(0)).await;
        assert_eq!(body["data"]["setCustomerLimit"]["userErrors"][0]["code"], "INVALID_CUSTOMER_LIMIT", "{body}");
        let body = api.gql(Some(&me), set_limit, limit(9_000)).await;
        assert_eq!(harness::live::error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let body = api.gql(Some(&ops), set_limit, limit(8_000)).await;
        assert_eq!(body["data"]["setCustomerLimit"]["userErrors"], json!([]), "{body}");
        api.settle().await;
        let body = api
            .gql(
                Some(&ops),
                "query($id: ID!) { staffMember(id: $id) { customerLimit } }",
                json!({ "id": graphql::ids::encode("Staff", &guide).to_string() }),
            )
            .await;
        assert_eq!(body["data"]["staffMember"]["customerLimit"], 8000, "{body}");

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

        // then two join and the third is refused: three members, the owner is one.
        assert_eq!(codes, [json!(null), json!(null), json!("GROUP_FULL")]);
        api.stop().await;
    }
}
