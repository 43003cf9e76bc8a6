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
