//! A guide who leaves stops being a caller at once (issue 16): once operations mark
//! them departed, their token and their API key are refused before any read, while
//! their colleagues go on. On both backends.

use engine::auth::{ApiKeys, Role};
use fixtures::departure;
use harness::departure::{guide, mark_departed, world_on, T};
use harness::ids::tenant;
use harness::live::{error_code, TestApi};
use harness::on_both_backends;
use serde_json::json;

const MINE: &str = "{ viewer { subject } customers(first: 5) { edges { node { id } } } }";

/// The error code of `MINE` as the holder of `token`, or `None` when they were served
/// their customers.
async fn refusal(api: &TestApi, token: &str) -> Option<String> {
    let body = api.gql(Some(token), MINE, json!({})).await;
    if error_code(&body).is_none() {
        let served = body["data"]["customers"]["edges"].as_array().unwrap();
        assert!(!served.is_empty(), "{body}");
    }
    error_code(&body)
}

on_both_backends! {
    async fn a_departed_guides_token_and_key_are_refused_from_that_moment(db: TestDb) {
        // Given a guide with customers, holding a token and an API key in their name
        let (_db, api) = world_on(db, 40, 2, false).await;
        let leaver = departure::leaver().to_string();
        let jwt = guide(&leaver);
        let key = ApiKeys::new(&api.engine.db)
            .create(&tenant(T), &leaver, Role::Guide, &[])
            .await
            .unwrap()
            .token;
        let colleague = guide(departure::successor(0).as_str());
        assert_eq!(refusal(&api, &jwt).await, None);
        assert_eq!(refusal(&api, &key).await, None);

        // when operations mark the guide departed
        mark_departed(&api).await;

        // then neither credential gets in, and a colleague's still does.
        assert_eq!(refusal(&api, &jwt).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(refusal(&api, &key).await.as_deref(), Some("UNAUTHENTICATED"));
        let body = api.gql(Some(&colleague), "{ viewer { subject } }", json!({})).await;
        assert_eq!(body["data"]["viewer"]["subject"], departure::successor(0).as_str(), "{body}");
        api.stop().await;
    }
}
