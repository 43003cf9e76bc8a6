//! Coupons in a running server, on both backends: a coupon past its date is expired by
//! the server's own sweep (once, however many ticks see it), and `funnel(by: CAMPAIGN)`
//! tells what a campaign brought back, not the channel lines.

use std::time::Duration;

use engine::auth::Role;
use harness::live::{token, TestApi};
use harness::on_both_backends;
use harness::world::{seeded, ONE_TENANT};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const CAMPAIGN: &str = "autumn-gold";

const ISSUE: &str =
    "mutation($i: IssueCouponInput!) { issueCoupon(input: $i) { userErrors { code } } }";
const PURCHASE: &str =
    "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { userErrors { code } } }";

async fn redemption(api: &TestApi, analyst: &str) -> Option<Value> {
    let body = api
        .gql(
            Some(analyst),
            "{ couponRedemption(by: CAMPAIGN, first: 100) { edges { node { key issued redeemed expired } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["couponRedemption"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| n["key"] == CAMPAIGN)
}

async fn campaign_funnel(api: &TestApi, analyst: &str) -> Vec<Value> {
    let body = api
        .gql(
            Some(analyst),
            "{ funnel(by: CAMPAIGN, first: 100) { edges { node { key friends firstPurchase repurchase loyal } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["funnel"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn coupon_events(api: &TestApi, customer: &str, kind: &str) -> i64 {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2",
        )
        .bind(format!("acme:{customer}"))
        .bind(kind)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

on_both_backends! {
    citus;
    async fn a_coupon_past_its_date_expires_once_and_a_campaign_shows_what_it_brought_back(db: TestDb) {
        // Given a guide and a customer of theirs who has not bought yet
        let db = seeded(db, ONE_TENANT).await;
        let api = TestApi::start_with(&db, |s| s.tick_every = Duration::from_millis(100)).await;
        let (guide, customer, store): (String, String, String) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT s.staff_id, s.customer_id, st.store_id FROM rm_staff_customer s \
                 JOIN rm_funnel_customer f ON f.tenant_id = s.tenant_id AND f.customer_id = s.customer_id \
                 JOIN rm_staff st ON st.tenant_id = s.tenant_id AND st.staff_id = s.staff_id \
                 WHERE s.tenant_id = 'acme' AND f.first_purchase_at IS NULL \
                 ORDER BY s.customer_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let analyst = token("acme", Role::Analyst, None, &[]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        assert!(campaign_funnel(&api, &analyst).await.iter().all(|l| l["key"] != CAMPAIGN));

        // when the guide gives them two coupons of the campaign, one valid for an hour
        for (expires_in, value) in [(chrono::Duration::hours(1), 5000), (chrono::Duration::days(30), 2000)] {
            let body = api
                .gql(
                    Some(&me),
                    ISSUE,
                    json!({ "i": { "customerId": id, "campaignId": CAMPAIGN, "valueFen": value,
                                   "expiresAt": api.clock.now() + expires_in,
                                   "idempotencyKey": Uuid::new_v4().to_string() } }),
                )
                .await;
            assert_eq!(body["data"]["issueCoupon"]["userErrors"], json!([]), "{body}");
        }
        // and the customer then buys
        let body = api
            .gql(
                Some(&me),
                PURCHASE,
                json!({ "i": { "customerId": id, "orderId": "o-autumn-1", "amountFen": 880000,
                               "storeId": store, "idempotencyKey": Uuid::new_v4().to_string() } }),
            )
            .await;
        assert_eq!(body["data"]["recordPurchase"]["userErrors"], json!([]), "{body}");
        api.settle().await;

        // then the campaign's funnel line is the campaign's, counting the customer once
        let lines = campaign_funnel(&api, &analyst).await;
        let line = lines.iter().find(|l| l["key"] == CAMPAIGN).unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(
            (&line["friends"], &line["firstPurchase"], &line["repurchase"]),
            (&json!(1), &json!(1), &json!(0)),
            "{line}"
        );
        assert_eq!(redemption(&api, &analyst).await.unwrap()["expired"], 0);

        // and once the hour is over, the server's sweep expires the first coupon only
        api.clock.advance(chrono::Duration::hours(2));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            api.settle().await;
            let line = redemption(&api, &analyst).await.unwrap();
            if line["expired"] == 1 {
                assert_eq!((&line["issued"], &line["redeemed"]), (&json!(2), &json!(0)), "{line}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not expired: {line}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // and later ticks do not expire it again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(coupon_events(&api, &customer, "CouponExpired").await, 1);
        let body = api
            .gql(
                Some(&me),
                "query($id: ID!) { customer(id: $id) { couponsExpired coupons(first: 10) { edges { node { status } } } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(body["data"]["customer"]["couponsExpired"], 1, "{body}");
        let mut statuses: Vec<String> = body["data"]["customer"]["coupons"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["status"].as_str().unwrap().to_string())
            .collect();
        statuses.sort();
        assert_eq!(statuses, ["EXPIRED", "ISSUED"]);
        api.stop().await;
    }
}
