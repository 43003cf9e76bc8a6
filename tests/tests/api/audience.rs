//! A campaign's audience counted before it is sent: operations count the tenant's
//! customers, a store manager their stores', with the customer list's filters; a guide
//! may not ask.

use engine::auth::Role;
use harness::live::{error_code, token, TestApi};
use harness::on_both_backends;
use harness::world::{busiest_guides, served, TWO_TENANTS};
use serde_json::{json, Value};

const AUDIENCE: &str = "query($f: CustomerFilter) { audience(filter: $f) { size } }";

async fn size(api: &TestApi, token: &str, filter: &Value) -> i64 {
    let body = api.gql(Some(token), AUDIENCE, json!({ "f": filter })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["audience"]["size"].as_i64().unwrap()
}

/// How many customers the caller's list shows for `filter` in `scope`, paging 50 at a time.
async fn listed(api: &TestApi, token: &str, scope: &str, filter: &Value) -> i64 {
    let query = format!(
        "query($after: String, $f: CustomerFilter) {{ customers(first: 50, after: $after, \
           scope: {scope}, filter: $f) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ id }} }} }} }}"
    );
    let (mut n, mut after) = (0, None::<String>);
    loop {
        let body = api
            .gql(Some(token), &query, json!({ "after": after, "f": filter }))
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let page = &body["data"]["customers"];
        n += page["edges"].as_array().unwrap().len() as i64;
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return n;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

on_both_backends! {
    citus;
    async fn operations_and_a_store_manager_see_a_campaigns_audience_before_sending(db: TestDb) {
        let (_db, api) = served(db, TWO_TENANTS).await;
        let (guide, store) = busiest_guides(&api.engine.db, "acme").await.remove(0);
        let ops = token("acme", Role::Operations, None, &[]);
        let manager = token("acme", Role::StoreManager, Some(&guide), &[&store]);
        let everyone = json!({});
        let buyers = json!({ "stages": ["FIRST_PURCHASE", "REPURCHASE", "LOYAL"] });
        // Operations: the tenant's customers, the other tenant's never.
        let tenant: i64 = projections::on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar("SELECT count(*) FROM rm_customer WHERE tenant_id = 'acme'")
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(size(&api, &ops, &everyone).await, tenant);
        // With a filter, the same customers the list shows, for each caller's reach.
        let ops_buyers = size(&api, &ops, &buyers).await;
        assert!(0 < ops_buyers && ops_buyers < tenant, "{ops_buyers} of {tenant}");
        assert_eq!(ops_buyers, listed(&api, &ops, "MINE", &buyers).await);
        let store_buyers = size(&api, &manager, &buyers).await;
        assert_eq!(store_buyers, listed(&api, &manager, "STORE", &buyers).await);
        assert!(0 < store_buyers && store_buyers < ops_buyers, "{store_buyers} of {ops_buyers}");
        // A guide does not send campaigns.
        let guide_token = token("acme", Role::Guide, Some(&guide), &[&store]);
        let body = api.gql(Some(&guide_token), AUDIENCE, json!({ "f": everyone })).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        api.stop().await;
    }
}
