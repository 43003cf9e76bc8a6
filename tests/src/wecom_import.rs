//! Driving the first import (issue 16) over HTTP, for the tests and the benchmark: a
//! tenant's API credentials pointing at a fake WeCom, the `startWecomImport` mutation
//! and its job as an operations user reads it.

use std::time::{Duration, Instant};

use engine::auth::Role;
use serde_json::{json, Value};
use uuid::Uuid;
use wecom::client::Secret;
use wecom::inbox;

use crate::fake_wecom::{FakeWecom, CORP_SECRET};
use crate::ids::tenant;
use crate::live::{token, TestApi};

/// The tenant the import tests and the benchmark import into.
pub const T: &str = "wecom-co";
pub const CORP: &str = "wwimport0000001";

/// `T`'s callback and API credentials, reading from `fake`.
pub async fn configure(api: &TestApi, fake: &FakeWecom) {
    inbox::configure_all(
        &api.engine.db,
        &tenant(T),
        &inbox::Setup {
            token: "QDG6eK".into(),
            encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
            receive_id: CORP.into(),
            corp_id: Some(CORP.into()),
            corp_secret: Some(Secret::new(CORP_SECRET)),
            api_base_url: Some(fake.base.clone()),
        },
    )
    .await
    .expect("configure WeCom");
}

pub fn ops() -> String {
    token(T, Role::Operations, None, &[])
}

/// The job fields the tests and the benchmark read.
pub const JOB: &str = "id status progressDone progressTotal errorCode ratePerSecond \
    etaSeconds wecomImport { phase relationsSeen relationsImported events groups rejected \
    throttled relationsPerSecond eventsPerSecond }";

/// Starts an import under a fresh key; returns the job's id.
pub async fn start(api: &TestApi) -> String {
    let body = api
        .gql(
            Some(&ops()),
            &format!(
                "mutation($i: StartWecomImportInput!) {{ startWecomImport(input: $i) {{ \
                 userErrors {{ code message }} job {{ {JOB} }} }} }}"
            ),
            json!({ "i": { "idempotencyKey": Uuid::new_v4().to_string() } }),
        )
        .await;
    let payload = &body["data"]["startWecomImport"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    payload["job"]["id"].as_str().expect("job id").to_string()
}

pub async fn job(api: &TestApi, id: &str) -> Value {
    let body = api
        .gql(
            Some(&ops()),
            &format!("query($id: ID!) {{ job(id: $id) {{ {JOB} }} }}"),
            json!({ "id": id }),
        )
        .await;
    body["data"]["job"].clone()
}

/// The job once it has succeeded (it may wait for WeCom on the way), checked every
/// `every`; `seen` gets each look at it.
pub async fn finished(
    api: &TestApi,
    id: &str,
    within: Duration,
    every: Duration,
    mut seen: impl FnMut(&Value),
) -> Value {
    let started = Instant::now();
    loop {
        let job = job(api, id).await;
        seen(&job);
        match job["status"].as_str() {
            Some("SUCCEEDED") => return job,
            Some("FAILED") => panic!("import failed: {job}"),
            _ if started.elapsed() > within => panic!("import not done in {within:?}: {job}"),
            _ => tokio::time::sleep(every).await,
        }
    }
}
