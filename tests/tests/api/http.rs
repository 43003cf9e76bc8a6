//! The API.md checklist over real HTTP: transport rules, cost limits, authentication,
//! error masking, personal data, idempotency and versions, and the committed SDL.

use engine::auth::{ApiKeys, Role};
use graphql::ids;
use harness::ids::tenant;
use harness::live::{error_code, jwt, token, token_with_scopes, TestApi, SECRET};
use harness::world::{busiest_guides, served, ONE_TENANT, TWO_TENANTS};
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const T: &str = "acme";

/// A guide of the tenant and one customer only they serve.
async fn guide_and_customer(api: &TestApi) -> (String, String) {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT min(staff_id), customer_id FROM rm_customer_staff WHERE tenant_id = $1 \
             GROUP BY customer_id HAVING count(*) = 1 ORDER BY customer_id LIMIT 1",
        )
        .bind(T)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

async fn event_count(api: &TestApi) -> i64 {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

async fn raw(
    api: &TestApi,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    api.http
        .post(format!("{}/graphql", api.base))
        .header("content-type", content_type)
        .bearer_auth(token(T, Role::Operations, None, &[]))
        .body(body)
        .send()
        .await
        .unwrap()
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rules_hold_before_anything_executes() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let before = event_count(&api).await;
    let mutation = json!({
        "query": "mutation { createTagGroup(input: {name: \"csrf\", idempotencyKey: \"6f1c1f0e-3b7a-4b36-9d51-8f0f8a1f2a10\"}) { userErrors { code } } }"
    })
    .to_string();
    // 1. GET is not served.
    let get = api
        .http
        .get(format!("{}/graphql?query={{viewer{{subject}}}}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    // 2. Only application/json, refused before execution.
    for content_type in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ] {
        let r = raw(&api, content_type, mutation.clone()).await;
        assert_eq!(r.status(), 415, "{content_type}");
    }
    assert_eq!(
        event_count(&api).await,
        before,
        "a refused mutation wrote events"
    );
    // 3. No batching.
    let batch = json!([{ "query": "{ viewer { subject } }" }, { "query": "{ viewer { role } }" }]);
    assert_eq!(
        raw(&api, "application/json", batch.to_string())
            .await
            .status(),
        400
    );
    // 4. Body cap. Just over the cap, the whole body is written before the answer. The
    //    server closes a connection whose body it refused, so these requests use a
    //    client of their own: the shared one would reuse the closed connection.
    let over = json!({ "query": format!("{{ viewer {{ subject }} }} #{}", "x".repeat(70 * 1024)) });
    let refused = reqwest::Client::new()
        .post(format!("{}/graphql", api.base))
        .header("content-type", "application/json")
        .bearer_auth(token(T, Role::Operations, None, &[]))
        .body(over.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    // At 1 MB the server may answer 413 and close before the client has written it
    // all, which the client sees as a broken pipe: either way the body was refused. A
    // client of its own, so the refused connection is not pooled for the next request.
    let big = json!({ "query": format!("{{ viewer {{ subject }} }} #{}", "x".repeat(1 << 20)) });
    let sent = reqwest::Client::new()
        .post(format!("{}/graphql", api.base))
        .header("content-type", "application/json")
        .bearer_auth(token(T, Role::Operations, None, &[]))
        .body(big.to_string())
        .send()
        .await;
    match sent {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // 6. Content negotiation: plain JSON gets application/json; a parse error in the
    //    GraphQL media type is a 400 without data.
    let r = api
        .http
        .post(format!("{}/graphql", api.base))
        .header("accept", "application/json")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let r = api
        .http
        .post(format!("{}/graphql", api.base))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ viewer { " }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("data").is_none() || body["data"].is_null());
    // 7. A cookie is not a credential; CORS answers only listed origins.
    let r = api
        .http
        .post(format!("{}/graphql", api.base))
        .header(
            "cookie",
            format!("token={}", token(T, Role::Admin, None, &[])),
        )
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    let preflight = api
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", api.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_limits_reject_expensive_documents() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let ops = token(T, Role::Operations, None, &[]);
    // 8. Depth.
    let deep = "{ customers(first: 1) { edges { node { staff(first: 1) { edges { node { \
        staffId } } } tags(first: 1) { edges { node { tagId } } } } } pageInfo { endCursor } } }";
    let body = api.gql(Some(&ops), deep, json!({})).await;
    assert!(body["errors"].is_null(), "depth 8 is fine: {body}");
    let depth = |n: usize| {
        let mut q = String::from("staffId");
        for _ in 0..n {
            q = format!("staff(first: 1) {{ edges {{ node {{ {q} }} }} }}");
        }
        q
    };
    // The schema's own nesting stops near depth 7, but limits are checked before field
    // validation, so an invented chain still measures the limit: depth 13 here.
    let body = api
        .gql(
            Some(&ops),
            &format!(
                "{{ customers(first: 1) {{ edges {{ node {{ {} }} }} }} }}",
                depth(4)
            ),
            json!({}),
        )
        .await;
    assert!(message(&body).contains("nested too deep"), "{body}");
    // 9. Complexity.
    let body = api
        .gql(
            Some(&ops),
            "{ customers(first: 100) { edges { node { groups(first: 100) { edges { node { name } } } } } } }",
            json!({}),
        )
        .await;
    assert!(message(&body).contains("too complex"), "{body}");
    // 10. Aliases.
    let aliases: String = (0..16)
        .map(|i| format!("a{i}: viewer {{ subject }} "))
        .collect();
    let body = api
        .gql(Some(&ops), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert!(message(&body).contains("Too many aliases"), "{body}");
    let fifteen: String = (0..15)
        .map(|i| format!("a{i}: viewer {{ subject }} "))
        .collect();
    let body = api
        .gql(Some(&ops), &format!("{{ {fifteen} }}"), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // 11. Directives.
    let body = api
        .gql(
            Some(&ops),
            "{ viewer @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) { subject } }",
            json!({}),
        )
        .await;
    assert!(!body["errors"].is_null(), "{body}");
    // 12. Page sizes.
    let body = api
        .gql(
            Some(&ops),
            "{ customers(first: 101) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    let body = api
        .gql(
            Some(&ops),
            "{ customers { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert!(!body["errors"].is_null(), "first is required: {body}");
    // 21. A tampered cursor.
    let body = api
        .gql(
            Some(&ops),
            "{ customers(first: 5, after: \"bm9wZQ\") { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    // 29. No suggestions.
    let body = api
        .gql(Some(&ops), "{ viewr { subject } }", json!({}))
        .await;
    assert!(!message(&body).contains("Did you mean"), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_credentials_authenticate() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let ask = |t: String| {
        let api = &api;
        async move {
            api.gql(Some(&t), "{ viewer { subject role } }", json!({}))
                .await
        }
    };
    assert!(ask(token(T, Role::Analyst, None, &[])).await["errors"].is_null());
    let now = chrono::Utc::now();
    let settings = jwt();
    let claims = settings.claims(
        &tenant(T),
        "someone",
        Role::Admin,
        &[],
        &[],
        now,
        chrono::Duration::hours(1),
    );
    let mut expired = claims.clone();
    expired.exp = (now - chrono::Duration::hours(2)).timestamp();
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = "someone-else".into();
    let other_key =
        engine::auth::JwtSettings::new("another-secret-another-secret-0000", "scrm", "scrm-api");
    let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(&serde_json::to_string(&claims).unwrap());
    let mut no_tid = serde_json::to_value(&claims).unwrap();
    no_tid.as_object_mut().unwrap().remove("tid");
    let no_tid = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &no_tid,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    for (name, bad) in [
        ("expired", settings.mint(&expired)),
        ("wrong audience", settings.mint(&wrong_aud)),
        ("wrong signature", other_key.mint(&claims)),
        ("alg none", format!("{header}.{payload}.")),
        ("missing tid", no_tid),
    ] {
        let body = ask(bad).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{name}: {body}"
        );
    }
    // 16. API keys: valid, out of scope, revoked, and ignored in the query string.
    let keys = ApiKeys::new(&api.engine.db);
    let key = keys
        .create(&tenant(T), "crm-sync", Role::Analyst, &[])
        .await
        .unwrap();
    let body = api
        .gql(Some(&key.token), "{ viewer { subject role } }", json!({}))
        .await;
    assert_eq!(body["data"]["viewer"]["role"], "analyst", "{body}");
    let body = api
        .gql(
            Some(&key.token),
            "{ departures(first: 1) { edges { node { staffId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let in_query = api
        .http
        .post(format!("{}/graphql?api_key={}", api.base, key.token))
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(error_code(&in_query).as_deref(), Some("UNAUTHENTICATED"));
    assert!(keys.revoke(&tenant(T), &key.key_id, now).await.unwrap());
    let body = api
        .gql(Some(&key.token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{body}"
    );
    let forged = format!("{}x", &key.token[..key.token.len() - 1]);
    let body = api
        .gql(Some(&forged), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    // 30. Introspection only for admins (this server has no GraphiQL).
    let intro = "{ __schema { queryType { name } } }";
    let body = api
        .gql(Some(&token(T, Role::Analyst, None, &[])), intro, json!({}))
        .await;
    assert!(
        body["data"]["__schema"].is_null() || !body["errors"].is_null(),
        "{body}"
    );
    let body = api
        .gql(Some(&token(T, Role::Admin, None, &[])), intro, json!({}))
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    let graphiql = api
        .http
        .get(format!("{}/graphiql", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(graphiql.status(), 404);
    api.stop().await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_masked_and_internal_errors_are_hidden() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let (guide, customer) = guide_and_customer(&api).await;
    let id = ids::encode("Customer", &customer).0;
    let q = "query($id: ID!) { customer(id: $id) { name phone maskedPhone } }";
    let body = api
        .gql(
            Some(&token(T, Role::Guide, Some(&guide), &[])),
            q,
            json!({ "id": id }),
        )
        .await;
    assert!(body["data"]["customer"]["phone"].is_null(), "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
    assert_eq!(
        body["errors"].as_array().unwrap().len(),
        1,
        "only the phone is refused"
    );
    let masked = body["data"]["customer"]["maskedPhone"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(masked.contains("****"), "{masked}");
    let body = api
        .gql(
            Some(&token_with_scopes(
                T,
                Role::Guide,
                Some(&guide),
                &[],
                &["pii"],
            )),
            q,
            json!({ "id": id }),
        )
        .await;
    let phone = body["data"]["customer"]["phone"].as_str().unwrap();
    assert!(!phone.contains('*') && phone.len() >= 11, "{body}");
    // 27. A database failure reaches the client as "Internal error" and a request id.
    on_pool!(&api.engine.db, |pool| {
        sqlx::query("ALTER TABLE rm_tag RENAME TO rm_tag_gone")
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let body = api
        .gql(
            Some(&token(T, Role::Operations, None, &[])),
            "{ tagGroups(first: 5) { edges { node { name tags(first: 5) { edges { node { name } } } } } } }",
            json!({}),
        )
        .await;
    let text = body.to_string();
    assert_eq!(message(&body), "Internal error", "{body}");
    assert!(
        body["errors"][0]["extensions"]["requestId"].is_string(),
        "{body}"
    );
    for leak in ["rm_tag", "relation", "SELECT", "127.0.0.1", "postgres"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_are_idempotent_versioned_and_report_rules_as_user_errors() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let (guide, customer) = guide_and_customer(&api).await;
    let me = token(T, Role::Guide, Some(&guide), &[]);
    let id = ids::encode("Customer", &customer).0;
    let remark = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { version replayed \
        userErrors { field code } customer { staff(first: 5) { edges { node { staffId remark } } } } } }";
    let key = Uuid::new_v4().to_string();
    let input = json!({ "customerId": id, "remark": "likes jade", "idempotencyKey": key });
    let before = event_count(&api).await;
    let first = api.gql(Some(&me), remark, json!({ "i": input })).await;
    assert!(
        first["data"]["setRemark"]["userErrors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{first}"
    );
    // Read your writes: the payload's portrait already shows the remark.
    assert!(first.to_string().contains("likes jade"), "{first}");
    let again = api.gql(Some(&me), remark, json!({ "i": input })).await;
    assert_eq!(again["data"]["setRemark"]["replayed"], true);
    assert_eq!(
        again["data"]["setRemark"]["version"],
        first["data"]["setRemark"]["version"]
    );
    assert_eq!(
        event_count(&api).await,
        before + 1,
        "one request, one event"
    );
    let reused = json!({ "customerId": id, "remark": "something else", "idempotencyKey": key });
    let body = api.gql(Some(&me), remark, json!({ "i": reused })).await;
    assert_eq!(
        body["data"]["setRemark"]["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED",
        "{body}"
    );
    // 36. Two edits from the same version: one wins, the other is told.
    let version = first["data"]["setRemark"]["version"].as_i64().unwrap();
    let edit = |text: &str| {
        json!({ "i": { "customerId": id, "remark": text, "expectedVersion": version,
                      "idempotencyKey": Uuid::new_v4().to_string() } })
    };
    let (a, b) = tokio::join!(
        api.gql(Some(&me), remark, edit("one")),
        api.gql(Some(&me), remark, edit("two"))
    );
    let codes: Vec<Value> = [a, b]
        .iter()
        .map(|r| r["data"]["setRemark"]["userErrors"][0]["code"].clone())
        .collect();
    assert_eq!(codes.iter().filter(|c| c.is_null()).count(), 1, "{codes:?}");
    assert!(codes.contains(&json!("VERSION_CONFLICT")), "{codes:?}");
    // A business rule: a tag that is not in the library.
    let body = api
        .gql(
            Some(&me),
            "mutation($i: TagCustomerInput!) { tagCustomer(input: $i) { userErrors { field code message } } }",
            json!({ "i": { "customerId": id, "tagId": "et-missing", "idempotencyKey": Uuid::new_v4().to_string() } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["tagCustomer"]["userErrors"][0]["code"],
        "UNKNOWN_TAG"
    );
    assert_eq!(
        body["data"]["tagCustomer"]["userErrors"][0]["field"],
        json!(["input", "tagId"])
    );
    // A customer the guide does not serve is "not found", not "forbidden".
    let body = api
        .gql(
            Some(&token(T, Role::Guide, Some("guide-nobody"), &[])),
            remark,
            json!({ "i": { "customerId": id, "remark": "x", "idempotencyKey": Uuid::new_v4().to_string() } }),
        )
        .await;
    assert_eq!(
        body["data"]["setRemark"]["userErrors"][0]["code"], "NOT_FOUND",
        "{body}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_runs_as_a_job_once_per_key() {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let analyst = token(T, Role::Analyst, None, &[]);
    let start = "mutation($i: StartRebuildInput!) { startRebuild(input: $i) { replayed userErrors { code } job { id status } } }";
    let key = Uuid::new_v4().to_string();
    let vars = json!({ "i": { "projection": "repurchase_funnel", "idempotencyKey": key } });
    let first = api.gql(Some(&analyst), start, vars.clone()).await;
    let job = first["data"]["startRebuild"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = api.gql(Some(&analyst), start, vars).await;
    assert_eq!(
        again["data"]["startRebuild"]["job"]["id"],
        job.as_str(),
        "{again}"
    );
    let started = std::time::Instant::now();
    loop {
        let body = api
            .gql(
                Some(&analyst),
                "query($id: ID!) { job(id: $id) { status progressDone progressTotal } }",
                json!({ "id": job }),
            )
            .await;
        match body["data"]["job"]["status"].as_str() {
            Some("SUCCEEDED") => {
                assert_eq!(body["data"]["job"]["progressDone"], 1);
                break;
            }
            Some("FAILED") => panic!("{body}"),
            _ => {}
        }
        assert!(started.elapsed().as_secs() < 60, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let jobs: i64 = on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!(jobs, 1);
    // Another tenant's analyst cannot see it; this tenant's guide may not ask.
    let body = api
        .gql(
            Some(&token("other", Role::Analyst, None, &[])),
            "query($id: ID!) { job(id: $id) { status } }",
            json!({ "id": job }),
        )
        .await;
    assert!(body["data"]["job"].is_null(), "{body}");
    api.stop().await;
}

/// 32. The committed SDL is what the code serves. `SCRM_BLESS=1` rewrites it.
#[test]
fn the_committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let sdl = graphql::sdl();
    if std::env::var_os("SCRM_BLESS").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is stale: run `cargo run --bin scrm -- schema > schema.graphql` and review the diff"
    );
}

/// `status` of the tenant's rows damaged by `damage` (an UPDATE), per tenant.
async fn damaged(db: &engine::db::Database) -> Vec<(String, i64)> {
    on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT tenant_id, count(*) FROM rm_customer WHERE purchases >= 1000 \
             GROUP BY tenant_id ORDER BY tenant_id",
        )
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

on_both_backends! {
    citus;
    async fn an_analysts_rebuild_replaces_their_tenants_rows_while_guides_keep_reading(db: TestDb) {
        let (_db, api) = served(db, TWO_TENANTS).await;
        let store = &api.engine.db;
        // Both tenants' portraits damaged, as a fold with a bug would leave them.
        on_pool!(store, |pool| sqlx::query("UPDATE rm_customer SET purchases = purchases + 1000")
            .execute(pool)
            .await
            .map(drop))
        .unwrap();
        let before = damaged(store).await;
        assert_eq!(before.len(), 2, "{before:?}");
        let (guide, store_id) = busiest_guides(store, T).await.remove(0);
        let guide = token(T, Role::Guide, Some(&guide), &[&store_id]);
        let analyst = token(T, Role::Analyst, None, &[]);
        let start = "mutation($i: StartRebuildInput!) { startRebuild(input: $i) { job { id } } }";
        let vars = json!({ "i": { "idempotencyKey": Uuid::new_v4().to_string() } });
        let started = api.gql(Some(&analyst), start, vars).await;
        let job = started["data"]["startRebuild"]["job"]["id"].as_str().unwrap().to_string();
        // The guide reads all the while, and every read is answered in full.
        let mut answered = 0;
        let began = std::time::Instant::now();
        loop {
            let read = api
                .gql(Some(&guide), "{ customers(first: 5) { edges { node { name } } } }", json!({}))
                .await;
            assert!(read["errors"].is_null(), "{read}");
            assert_eq!(read["data"]["customers"]["edges"].as_array().map(Vec::len), Some(5), "{read}");
            answered += 1;
            let body = api
                .gql(Some(&analyst), "query($id: ID!) { job(id: $id) { status } }", json!({ "id": job }))
                .await;
            match body["data"]["job"]["status"].as_str() {
                Some("SUCCEEDED") => break,
                Some("FAILED") => panic!("{body}"),
                _ => {}
            }
            assert!(began.elapsed().as_secs() < 120, "{body}");
        }
        assert!(answered > 1, "reads answered while the rebuild ran: {answered}");
        // Only the analyst's tenant was rebuilt; the other's rows are as they were.
        let after = damaged(store).await;
        assert_eq!(after, vec![before[1].clone()], "{after:?}");
        api.stop().await;
    }
}
