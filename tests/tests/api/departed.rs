//! A guide who leaves stops being a caller at once (issue 16): once operations mark
//! them departed, their token and their API key are refused before any read, while
//! their colleagues go on. On both backends. A server that keeps "still here" in
//! memory (docs/adr/0026-staff-presence.md) refuses them too, whichever server marked
//! the departure.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use engine::auth::{ApiKeys, Role};
use fixtures::departure;
use harness::departure::{guide, mark_departed, world_on, T};
use harness::ids::tenant;
use harness::live::{error_code, TestApi};
use harness::on_both_backends;
use harness::TestDb;
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

/// Two servers on one PostgreSQL database: the first has answered "still here" from
/// memory; the second marks the guide departed. The first refuses the guide's next
/// requests as soon as the log's notice reaches it, without a restart or a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departure_marked_on_another_server_reaches_the_one_that_remembered_the_guide() {
    // Given a server that has checked the guide against the log once and keeps the answer
    let (db, first) = world_on(TestDb::postgres().await, 40, 2, false).await;
    let second = TestApi::start_with(&db, |_| {}).await;
    let presence = first.engine.presence.clone();
    for _ in 0..250 {
        if presence.is_live() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        presence.is_live(),
        "the first server never heard departures"
    );
    let jwt = guide(departure::leaver().as_str());
    assert_eq!(refusal(&first, &jwt).await, None);
    let hits = presence.stats.hits.load(Relaxed);
    assert_eq!(refusal(&first, &jwt).await, None);
    assert!(
        presence.stats.hits.load(Relaxed) > hits,
        "the second check came from memory"
    );

    // when the other server marks the guide departed
    mark_departed(&second).await;

    // then the first refuses them once the notice arrives (within moments), and keeps
    // answering their colleague.
    let mut refused = None;
    for _ in 0..100 {
        refused = refusal(&first, &jwt).await;
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refused.as_deref(), Some("UNAUTHENTICATED"));
    let colleague = guide(departure::successor(0).as_str());
    let body = first
        .gql(Some(&colleague), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["viewer"]["subject"],
        departure::successor(0).as_str(),
        "{body}"
    );
    assert_eq!(
        refusal(&first, &jwt).await.as_deref(),
        Some("UNAUTHENTICATED")
    );
    // and says so on /metrics.
    let metrics = first.metrics().await;
    assert!(metrics.contains("scrm_staff_presence_live 1"), "{metrics}");
    let hits = presence.stats.hits.load(Relaxed);
    assert!(
        metrics.contains(&format!(
            "scrm_staff_presence_lookups_total{{result=\"hit\"}} {hits}"
        )),
        "{metrics}"
    );
    second.stop().await;
    first.stop().await;
}
