//! A guide reads the timeline in names and Chinese: the staff member's and the tag's
//! names as the read models hold them, not their ids; English when asked for.

use engine::auth::Role;
use harness::live::token;
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::json;

const TIMELINE: &str = "query($id: ID!, $language: Language!) { customer(id: $id) { \
    timeline(first: 50, language: $language) { edges { node { kind summary } } } } }";

on_both_backends! {
    async fn a_tagging_reads_as_who_tagged_the_customer_with_what(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let (guide, customer, staff_name, tag_name): (String, String, String, String) =
            on_pool!(&api.engine.db, |pool| {
                sqlx::query_as(
                    "SELECT x.staff_id, x.customer_id, s.name, t.name FROM rm_customer_tag x \
                     JOIN rm_staff s ON s.tenant_id = x.tenant_id AND s.staff_id = x.staff_id \
                     JOIN rm_tag t ON t.tenant_id = x.tenant_id AND t.tag_id = x.tag_id \
                     WHERE x.tenant_id = 'acme' ORDER BY x.customer_id, x.tag_id LIMIT 1",
                )
                .fetch_one(pool)
                .await
            })
            .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let summaries = |body: &serde_json::Value| -> Vec<String> {
            body["data"]["customer"]["timeline"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .iter()
                .filter(|e| e["node"]["kind"] == "Tagged")
                .map(|e| e["node"]["summary"].as_str().unwrap().to_string())
                .collect()
        };
        let chinese = api
            .gql(Some(&me), TIMELINE, json!({ "id": id, "language": "ZH_CN" }))
            .await;
        let expected = format!("{staff_name} 给客户打了标签「{tag_name}」");
        assert!(summaries(&chinese).contains(&expected), "{expected} in {chinese}");
        let text = chinese.to_string();
        assert!(!text.contains(&guide), "no staff id in {text}");
        let english = api
            .gql(Some(&me), TIMELINE, json!({ "id": id, "language": "EN" }))
            .await;
        let expected = format!("{staff_name} tagged \"{tag_name}\"");
        assert!(summaries(&english).contains(&expected), "{expected} in {english}");
        api.stop().await;
    }
}

const NAMED: &str = "query($id: ID!) { customer(id: $id) { \
    timeline(first: 50) { edges { node { kind summary } } } } }";

/// The summaries of `kind` in `body`'s timeline.
fn of_kind(body: &serde_json::Value, kind: &str) -> Vec<String> {
    body["data"]["customer"]["timeline"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .filter(|e| e["node"]["kind"] == kind)
        .map(|e| e["node"]["summary"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends! {
    async fn a_customer_reached_by_a_named_campaign_reads_its_name(db: TestDb) {
        use harness::fake_wecom::FakeWecom;
        let fake = FakeWecom::start("ww5823bf96d3bd56c7").await;
        let (_db, api) = served(db, ONE_TENANT).await;
        let tenant = domain::values::TenantId::parse_slug("acme").unwrap();
        fake.connect(&api.engine.db, &tenant, "QDG6eK",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C").await;
        let (guide, customer): (String, String) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT staff_id, customer_id FROM rm_customer_staff WHERE tenant_id = 'acme' \
                 ORDER BY customer_id, staff_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        // Scheduled weeks ahead, so the job plans nobody while the test delivers it.
        let ops = token("acme", Role::Operations, None, &[]);
        let start = "mutation($i: StartCampaignInput!) { startCampaign(input: $i) { \
            userErrors { field } job { id } } }";
        let send_at = (api.clock.now() + chrono::Duration::days(20)).to_rfc3339();
        let body = api.gql(Some(&ops), start, json!({ "i": { "name": "七夕金饰回访",
            "kind": "MASS_MESSAGE", "text": "七夕快乐", "couponCampaignId": "qixi-gold",
            "sendAt": send_at, "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["startCampaign"]["userErrors"], json!([]), "{body}");
        let job = body["data"]["startCampaign"]["job"]["id"].as_str().unwrap();
        let job = graphql::ids::decode("Job", &job.into()).unwrap();
        // An unnamed campaign is read by its id.
        let body = api.gql(Some(&ops), start, json!({ "i": { "kind": "MOMENT",
            "text": "新品", "sendAt": send_at,
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        let unnamed = body["data"]["startCampaign"]["job"]["id"].as_str().unwrap();
        let unnamed = graphql::ids::decode("Job", &unnamed.into()).unwrap();

        // WeCom reports the guide's task delivered, as the campaign's job records it.
        let stream = format!("acme:{customer}");
        let guide_id = domain::values::StaffId::parse(&guide).unwrap();
        for command in [
            domain::customer::CustomerCommand::DeliverMassMessage {
                message: domain::values::MessageId::parse(&job).unwrap(),
                sender: guide_id.clone(),
                time_zone: chrono_tz::Asia::Shanghai,
            },
            domain::customer::CustomerCommand::DeliverMoment {
                moment: domain::values::MessageId::parse(&unnamed).unwrap(),
                sender: guide_id.clone(),
                time_zone: chrono_tz::Asia::Shanghai,
            },
        ] {
            let meta = engine::commands::CommandMeta::new(tenant.clone(),
                engine::commands::Actor::integration("wecom"), uuid::Uuid::new_v4());
            api.engine.customers
                .execute(&stream, domain::stamp::Stamped::new(api.clock.now(), command), &meta)
                .await
                .unwrap();
        }
        // The guide issues a coupon of the campaign's coupon campaign.
        let store: String = on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar("SELECT store_id FROM rm_staff WHERE tenant_id = 'acme' \
                AND staff_id = $1")
            .bind(&guide)
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[&store]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let issue = "mutation($i: IssueCouponInput!) { issueCoupon(input: $i) { \
            userErrors { code } } }";
        let body = api.gql(Some(&me), issue, json!({ "i": { "customerId": id,
            "campaignId": "qixi-gold", "valueFen": 5000, "expiresAt": "2099-01-01T00:00:00Z",
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["issueCoupon"]["userErrors"], json!([]), "{body}");

        let body = api.gql(Some(&me), NAMED, json!({ "id": id })).await;
        let delivered = of_kind(&body, "MassMessageDelivered");
        assert!(delivered.iter().any(|s| s.ends_with("的群发消息「七夕金饰回访」")), "{body}");
        assert!(!body.to_string().contains(&job), "no campaign id in {body}");
        let moment = of_kind(&body, "MomentDelivered");
        assert!(moment.iter().any(|s| s.ends_with(&format!("的朋友圈「{unnamed}」"))), "{body}");
        let coupon = of_kind(&body, "CouponIssued");
        assert!(coupon.iter().any(|s| s.contains("（活动「七夕金饰回访」，¥50.00）")), "{body}");
        assert!(!body.to_string().contains("qixi-gold"), "no coupon campaign id in {body}");
        // The portrait of an instant names them the same way.
        let then = api.clock.now() + chrono::Duration::seconds(1);
        let as_of = "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { \
            timeline(first: 50) { edges { node { kind summary } } } } }";
        let past = api.gql(Some(&me), as_of, json!({ "id": id, "at": then.to_rfc3339() })).await;
        assert_eq!(of_kind(&past, "MassMessageDelivered"), delivered, "{past}");
        assert_eq!(of_kind(&past, "CouponIssued"), coupon, "{past}");
        api.stop().await;
    }
}

/// A customer of `tenant` someone tagged, with that guide's token and the tagging's
/// summary in each language.
async fn tagged_in(api: &harness::live::TestApi, tenant: &str) -> (String, String, [String; 2]) {
    let (guide, customer, staff_name, tag_name): (String, String, String, String) =
        on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT x.staff_id, x.customer_id, s.name, t.name FROM rm_customer_tag x \
                 JOIN rm_staff s ON s.tenant_id = x.tenant_id AND s.staff_id = x.staff_id \
                 JOIN rm_tag t ON t.tenant_id = x.tenant_id AND t.tag_id = x.tag_id \
                 WHERE x.tenant_id = $1 ORDER BY x.customer_id, x.tag_id LIMIT 1",
            )
            .bind(tenant)
            .fetch_one(pool)
            .await
        })
        .unwrap();
    (
        token(tenant, Role::Guide, Some(&guide), &[]),
        graphql::ids::encode("Customer", &customer).to_string(),
        [
            format!("{staff_name} 给客户打了标签「{tag_name}」"),
            format!("{staff_name} tagged \"{tag_name}\""),
        ],
    )
}

on_both_backends! {
    async fn a_tenant_set_to_english_reads_english_unless_a_request_asks_otherwise(db: TestDb) {
        let (_db, api) = served(db, harness::world::TWO_TENANTS).await;
        let read = |who: String, id: String, language: Option<&'static str>| {
            let api = &api;
            async move {
                let (doc, vars) = match language {
                    Some(l) => (TIMELINE, json!({ "id": id, "language": l })),
                    None => (NAMED, json!({ "id": id })),
                };
                of_kind(&api.gql(Some(&who), doc, vars).await, "Tagged")
            }
        };
        let (acme, acme_customer, acme_said) = tagged_in(&api, "acme").await;
        let (beta, beta_customer, beta_said) = tagged_in(&api, "beta").await;
        // Until an admin says otherwise, everyone reads Chinese.
        assert!(read(acme.clone(), acme_customer.clone(), None).await.contains(&acme_said[0]));

        let set = "mutation($i: SetTenantLanguageInput!) { setTenantLanguage(input: $i) { \
            id userErrors { code } } }";
        let admin = token("acme", Role::Admin, None, &[]);
        let body = api.gql(Some(&admin), set, json!({ "i": { "language": "EN",
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["setTenantLanguage"]["userErrors"], json!([]), "{body}");

        let english = read(acme.clone(), acme_customer.clone(), None).await;
        assert!(english.contains(&acme_said[1]), "{english:?}");
        assert!(!english.contains(&acme_said[0]), "{english:?}");
        // A request that names a language reads it.
        let asked = read(acme.clone(), acme_customer.clone(), Some("ZH_CN")).await;
        assert!(asked.contains(&acme_said[0]), "{asked:?}");
        // The other tenant is still Chinese.
        let other = read(beta.clone(), beta_customer.clone(), None).await;
        assert!(other.contains(&beta_said[0]), "{other:?}");
        assert!(!other.contains(&beta_said[1]), "{other:?}");
        // Back to Chinese, and so it reads.
        let body = api.gql(Some(&admin), set, json!({ "i": { "language": "ZH_CN",
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["setTenantLanguage"]["userErrors"], json!([]), "{body}");
        assert!(read(acme, acme_customer, None).await.contains(&acme_said[0]));
        api.stop().await;
    }
}

on_both_backends! {
    async fn every_role_reads_its_own_tenants_language_back_as_an_admin_set_it(db: TestDb) {
        let (_db, api) = served(db, harness::world::TWO_TENANTS).await;
        let roles = [
            Role::Guide,
            Role::StoreManager,
            Role::Operations,
            Role::Analyst,
            Role::Admin,
        ];
        let read = |tenant: &'static str, role: Role| {
            let api = &api;
            async move {
                let staff = matches!(role, Role::Guide | Role::StoreManager).then_some("g1");
                let who = token(tenant, role, staff, &[]);
                let body = api.gql(Some(&who), "{ tenantLanguage }", json!({})).await;
                assert!(body["errors"].is_null(), "{tenant} {role:?}: {body}");
                body["data"]["tenantLanguage"].clone()
            }
        };
        for role in roles {
            assert_eq!(read("acme", role).await, json!("ZH_CN"), "{role:?} before");
        }
        let set = "mutation($i: SetTenantLanguageInput!) { setTenantLanguage(input: $i) { \
            userErrors { code } } }";
        let admin = token("acme", Role::Admin, None, &[]);
        let body = api.gql(Some(&admin), set, json!({ "i": { "language": "EN",
            "idempotencyKey": uuid::Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["setTenantLanguage"]["userErrors"], json!([]), "{body}");
        for role in roles {
            assert_eq!(read("acme", role).await, json!("EN"), "acme's {role:?}");
            // The other tenant was not told otherwise: still Chinese.
            assert_eq!(read("beta", role).await, json!("ZH_CN"), "beta's {role:?}");
        }
        api.stop().await;
    }
}
