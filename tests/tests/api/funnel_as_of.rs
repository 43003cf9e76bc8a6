//! The funnel and coupon redemption as of an instant are what they were then: read
//! both, note the instant, let a guide issue and redeem a coupon and record purchases,
//! and both as of that instant are the first answers exactly, while today's move.

use engine::auth::Role;
use harness::live::token;
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const FIGURES: &str = "query($at: DateTime) { \
    byStore: funnel(by: STORE, first: 100, asOf: $at) { edges { node { key friends firstPurchase repurchase loyal } } } \
    byCampaign: funnel(by: CAMPAIGN, first: 100, asOf: $at) { edges { node { key friends firstPurchase repurchase loyal } } } \
    coupons: couponRedemption(by: CAMPAIGN, first: 100, asOf: $at) { edges { node { key issued redeemed expired } } } }";

on_both_backends! {
    async fn the_funnel_as_of_an_instant_is_the_funnel_of_that_instant(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let (guide, customer, store): (String, String, String) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT r.staff_id, r.customer_id, s.store_id FROM rm_customer_staff r \
                 JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
                 JOIN rm_funnel_customer f ON f.tenant_id = r.tenant_id \
                  AND f.customer_id = r.customer_id AND f.first_purchase_at IS NULL \
                 WHERE r.tenant_id = 'acme' ORDER BY r.customer_id, r.staff_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let analyst = token("acme", Role::Analyst, None, &[]);
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let read = |at: Option<String>| {
            let api = &api;
            let analyst = analyst.clone();
            async move {
                let body = api.gql(Some(&analyst), FIGURES, json!({ "at": at })).await;
                assert!(body["errors"].is_null(), "{body}");
                body["data"].clone()
            }
        };
        let before = read(None).await;
        assert!(!before["byStore"]["edges"].as_array().unwrap().is_empty(), "{before}");
        let instant = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        // A customer who never bought is given a new campaign's coupon, redeems it, and
        // buys twice: a first purchase and a repurchase.
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let run = |doc: &'static str, input: Value| {
            let api = &api;
            let me = me.clone();
            async move {
                let body = api.gql(Some(&me), doc, json!({ "i": input })).await;
                let field = body["data"].as_object().and_then(|o| o.values().next().cloned());
                assert_eq!(field.unwrap_or_default()["userErrors"], json!([]), "{body}");
                body
            }
        };
        let issued = run(
            "mutation($i: IssueCouponInput!) { issueCoupon(input: $i) { couponId userErrors { code } } }",
            json!({ "customerId": id, "campaignId": "as-of-campaign", "valueFen": 5000,
                    "expiresAt": "2099-01-01T00:00:00Z", "idempotencyKey": Uuid::new_v4().to_string() }),
        )
        .await;
        let coupon = issued["data"]["issueCoupon"]["couponId"].as_str().unwrap().to_string();
        run(
            "mutation($i: RedeemCouponInput!) { redeemCoupon(input: $i) { userErrors { code } } }",
            json!({ "customerId": id, "couponId": coupon, "idempotencyKey": Uuid::new_v4().to_string() }),
        )
        .await;
        for _ in 0..2 {
            run(
                "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { userErrors { code } } }",
                json!({ "customerId": id, "orderId": format!("od-{}", Uuid::new_v4().simple()),
                        "amountFen": 88800, "storeId": store, "idempotencyKey": Uuid::new_v4().to_string() }),
            )
            .await;
        }

        // Read-your-writes holds for the writer; the analyst waits for the projector.
        let mut today = json!(null);
        for _ in 0..100 {
            today = read(None).await;
            if today.to_string().contains("as-of-campaign") && today["byStore"] != before["byStore"] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(today.to_string().contains("as-of-campaign"), "{today}");
        assert_ne!(today["byStore"], before["byStore"], "the purchases moved the funnel");
        assert_ne!(today["coupons"], before["coupons"]);

        assert_eq!(read(Some(instant.to_rfc3339())).await, before);
        let empty = read(Some("2000-01-01T00:00:00Z".into())).await;
        assert_eq!(empty["byStore"]["edges"], json!([]), "{empty}");
        assert_eq!(empty["coupons"]["edges"], json!([]), "{empty}");
        api.stop().await;
    }
}

/// A read that runs past its deadline is cancelled and answered `TIMEOUT`, with what to
/// do, not an internal error: here the funnel waits on a lock an operator holds on its
/// table (PostgreSQL; SQLite has no statement deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_funnel_past_its_deadline_is_a_clear_timeout() {
    let (_db, api) = served(harness::TestDb::postgres().await, ONE_TENANT).await;
    let pool = harness::pg(&api.engine.db).clone();
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE rm_funnel_customer IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let analyst = token("acme", Role::Analyst, None, &[]);
    let started = std::time::Instant::now();
    let body = api
        .gql(
            Some(&analyst),
            "{ funnel(by: STORE, first: 10, asOf: \"2026-01-01T00:00:00Z\") { edges { node { key } } } }",
            json!({}),
        )
        .await;
    lock.rollback().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deadline"),
        "{body}"
    );
    let waited = started.elapsed().as_secs();
    assert!((5..10).contains(&waited), "cancelled after {waited} s");
    api.stop().await;
}
