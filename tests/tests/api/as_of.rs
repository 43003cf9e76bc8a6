//! A portrait as of an instant is the read model as it stood then: read the portrait, note
//! the instant, change the customer (a remark) and the tag library (a rename), and the
//! portrait as of that instant is the first answer exactly, while today's shows the
//! changes.

use engine::auth::Role;
use harness::live::token;
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::json;
use uuid::Uuid;

const PORTRAIT: &str = "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { \
    name stage purchases couponsIssued lastActivityAt firstAddedAt \
    staff(first: 10) { edges { node { staffId staffName storeId remark description addedAt } } } \
    tags(first: 50) { edges { node { tagId name groupName staffId taggedAt } } } \
    groups(first: 20) { edges { node { groupId name joinedAt } } } \
    coupons(first: 20) { edges { node { couponId status issuedAt } } } \
    timeline(first: 50) { edges { node { sequence kind summary occurredAt } } } } }";

on_both_backends! {
    async fn a_portrait_as_of_an_instant_is_the_read_model_of_that_instant(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let (guide, customer, tag): (String, String, String) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT r.staff_id, t.customer_id, t.tag_id FROM rm_customer_tag t \
                 JOIN rm_customer_staff r ON r.tenant_id = t.tenant_id \
                 AND r.customer_id = t.customer_id WHERE t.tenant_id = 'acme' \
                 ORDER BY t.customer_id, r.staff_id, t.tag_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let admin = token("acme", Role::Admin, None, &[]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let now = json!({ "id": id, "at": null });
        let before = api.gql(Some(&me), PORTRAIT, now.clone()).await;
        assert!(before["errors"].is_null(), "{before}");
        assert!(!before["data"]["customer"]["tags"]["edges"].as_array().unwrap().is_empty());
        let instant = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        let remark = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { userErrors { code } } }";
        let vars = json!({ "i": { "customerId": id, "remark": "想看婚戒",
            "idempotencyKey": Uuid::new_v4().to_string() } });
        let body = api.gql(Some(&me), remark, vars).await;
        assert_eq!(body["data"]["setRemark"]["userErrors"], json!([]), "{body}");
        let rename = "mutation($i: RenameTagInput!) { renameTag(input: $i) { userErrors { code } } }";
        let vars = json!({ "i": { "tagId": tag, "name": "改名后的标签",
            "idempotencyKey": Uuid::new_v4().to_string() } });
        let body = api.gql(Some(&admin), rename, vars).await;
        assert_eq!(body["data"]["renameTag"]["userErrors"], json!([]), "{body}");

        // Read-your-writes holds for the writer; the guide waits for the admin's rename.
        let mut today = json!(null);
        for _ in 0..100 {
            today = api.gql(Some(&me), PORTRAIT, now.clone()).await;
            if today.to_string().contains("改名后的标签") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let text = today.to_string();
        assert!(text.contains("想看婚戒") && text.contains("改名后的标签"), "{today}");
        assert_ne!(today["data"], before["data"]);

        let then = api
            .gql(Some(&me), PORTRAIT, json!({ "id": id, "at": instant.to_rfc3339() }))
            .await;
        assert!(then["errors"].is_null(), "{then}");
        assert_eq!(then["data"], before["data"]);

        // Before the customer was known there is no portrait; another guide's customer
        // is not reachable through the past either.
        let long_ago = json!({ "id": id, "at": "2000-01-01T00:00:00Z" });
        let body = api.gql(Some(&me), PORTRAIT, long_ago).await;
        assert_eq!(body["data"]["customer"], json!(null), "{body}");
        let (stranger,): (String,) = on_pool!(&api.engine.db, |pool| {
            sqlx::query_as(
                "SELECT customer_id FROM rm_customer c WHERE tenant_id = 'acme' AND NOT EXISTS \
                 (SELECT 1 FROM rm_customer_staff r WHERE r.tenant_id = c.tenant_id \
                 AND r.customer_id = c.customer_id AND r.staff_id = $1) LIMIT 1",
            )
            .bind(&guide)
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let vars = json!({ "id": graphql::ids::encode("Customer", &stranger).to_string(),
            "at": instant.to_rfc3339() });
        let body = api.gql(Some(&me), PORTRAIT, vars).await;
        assert_eq!(body["data"]["customer"], json!(null), "{body}");
        api.stop().await;
    }
}

const GROUPS: &str = "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { \
    groups(first: 20) { edges { node { groupId name } } } \
    timeline(first: 50, language: ZH_CN) { edges { node { kind summary } } } } }";

on_both_backends! {
    async fn a_group_renamed_after_an_instant_reads_its_old_name_as_of_then(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let (guide, customer, group, old): (String, String, String, String) =
            on_pool!(&api.engine.db, |pool| {
                sqlx::query_as(
                    "SELECT r.staff_id, m.customer_id, m.group_id, g.name \
                     FROM rm_customer_group m \
                     JOIN rm_group_owner g ON g.tenant_id = m.tenant_id \
                     AND g.group_id = m.group_id \
                     JOIN rm_customer_staff r ON r.tenant_id = m.tenant_id \
                     AND r.customer_id = m.customer_id WHERE m.tenant_id = 'acme' \
                     ORDER BY m.customer_id, m.group_id, r.staff_id LIMIT 1",
                )
                .fetch_one(pool)
                .await
            })
            .unwrap();
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let name_of = |body: &serde_json::Value| -> String {
            body["data"]["customer"]["groups"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .iter()
                .find(|e| e["node"]["groupId"] == group.as_str())
                .map(|e| e["node"]["name"].as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|| panic!("{group} in {body}"))
        };
        let joined = |body: &serde_json::Value, name: &str| -> bool {
            let said = format!("加入了客户群「{name}」");
            body["data"]["customer"]["timeline"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .iter()
                .any(|e| e["node"]["summary"] == said.as_str())
        };
        let instant = api.clock.now();
        let renamed = "金饰会员二群（改名后）";
        assert_ne!(old, renamed);
        // WeCom reports the group's new name a second after the instant.
        let meta = engine::commands::CommandMeta::new(
            domain::values::TenantId::parse_slug("acme").unwrap(),
            engine::commands::Actor::integration("wecom"),
            Uuid::new_v4(),
        );
        let rename = domain::group::GroupCommand::Rename { name: renamed.into() };
        api.engine
            .groups
            .execute(
                &format!("acme:{group}"),
                domain::stamp::Stamped::new(instant + chrono::Duration::seconds(1), rename),
                &meta,
            )
            .await
            .unwrap();
        api.settle().await;

        let today = api.gql(Some(&me), GROUPS, json!({ "id": id, "at": null })).await;
        assert_eq!(name_of(&today), renamed, "{today}");
        assert!(joined(&today, renamed), "{today}");
        let then = api
            .gql(Some(&me), GROUPS, json!({ "id": id, "at": instant.to_rfc3339() }))
            .await;
        assert_eq!(name_of(&then), old, "{then}");
        assert!(joined(&then, &old), "{then}");
        assert!(!then.to_string().contains(renamed), "{then}");
        // From the rename on, the past reads the new name too.
        let after = instant + chrono::Duration::seconds(2);
        let later = api.gql(Some(&me), GROUPS, json!({ "id": id, "at": after.to_rfc3339() })).await;
        assert_eq!(name_of(&later), renamed, "{later}");
        api.stop().await;
    }
}
