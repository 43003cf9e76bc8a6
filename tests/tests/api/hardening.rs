//! Issue 14: what an attacker found from outside, each as a test over real HTTP and
//! WebSocket against PostgreSQL (and SQLite where a read model differs): a document
//! nested deep enough to overflow the parser's stack, one guide holding the pool, a
//! token of a tenant nobody registered, introspection over a socket, a field repeated
//! hundreds of times, another caller's idempotency key and a tenant's projection
//! figures.

use std::time::{Duration, Instant};

use engine::auth::{ApiKeys, Role};
use engine::db::Database;
use graphql::ids;
use graphql::in_flight::InFlightLimits;
use graphql::rate_limit::Rate;
use harness::ids::tenant;
use harness::live::{error_code, register, token, TestApi};
use harness::world::{busiest_guides, seeded, sole_customer, TWO_TENANTS};
use harness::ws::{connect, open, receive, request, send, send_text};
use harness::{on_both_backends, pg, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const A: &str = "acme";
const B: &str = "beta";

/// The busiest guides of `t` with their store, and a customer only the first serves.
async fn guides(db: &Database, t: &str) -> (Vec<(String, String)>, String) {
    let guides = busiest_guides(db, t).await;
    let customer = sole_customer(db, t, &guides[0].0)
        .await
        .expect("a customer only the busiest guide serves");
    (guides, customer)
}

/// POSTs `body` as JSON (with `bearer`, if any): the status and the body, parsed when it
/// is JSON.
async fn post_raw(api: &TestApi, bearer: Option<&str>, body: String) -> (u16, Value) {
    // No pooled connections: the server closes one whose body it refused, and a pooled
    // client would send the next request on it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut request = client
        .post(format!("{}/graphql", api.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(api: &TestApi, bearer: Option<&str>, query: &str, variables: Value) -> Value {
    post_raw(
        api,
        bearer,
        json!({ "query": query, "variables": variables }).to_string(),
    )
    .await
    .1
}

fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

/// Documents that nest `levels` deep in each place a value (or a selection) appears.
fn deep_documents(levels: usize) -> Vec<(&'static str, String)> {
    let list = nested("[", "1", "]", levels);
    let object = nested("{a: ", "1", "}", levels / 4);
    vec![
        (
            "argument",
            format!(
                "{{ customers(first: 1, filter: {{stages: {list}}}) {{ edges {{ cursor }} }} }}"
            ),
        ),
        (
            "object argument",
            format!("{{ customers(first: 1, filter: {object}) {{ edges {{ cursor }} }} }}"),
        ),
        (
            "variable default",
            format!(
                "query($f: CustomerFilter = {{stages: {list}}}) {{ customers(first: 1, filter: $f) \
                 {{ edges {{ cursor }} }} }}"
            ),
        ),
        (
            "directive argument",
            format!("{{ viewer @include(if: {list}) {{ role }} }}"),
        ),
        (
            "selection set",
            format!("{{ {} }}", nested("viewer { ", "role", " }", levels / 8)),
        ),
    ]
}

async fn still_serving(api: &TestApi, bearer: &str) {
    let health = api
        .http
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .expect("the server is still up");
    assert_eq!(health.status(), 200);
    let body = post(api, Some(bearer), "{ viewer { role } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["role"], "guide", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_nested_thousands_deep_is_refused_before_parsing_and_the_server_survives() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    let api = TestApi::start(&db).await;
    let guide = token(A, Role::Guide, Some("g1"), &[]);
    // Over HTTP without a token, at 2,000 levels (the attack: 4 KB) and as deep as the
    // 16 KB document cap allows.
    for levels in [2_000, 7_000] {
        for (place, document) in deep_documents(levels) {
            let (status, body) = post_raw(
                &api,
                None,
                json!({ "query": document, "variables": {} }).to_string(),
            )
            .await;
            assert_eq!(status, 200, "{place} at {levels}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{place} at {levels}: {body}"
            );
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nests too deeply"),
                "{place}: {body}"
            );
        }
        still_serving(&api, &guide).await;
    }
    // 1e5 levels: past the body cap as a document, and as JSON variables past
    // serde_json's recursion limit; refused either way, the server still up.
    // The server may answer 413 and close before the client has written it all, which
    // the client sees as a broken pipe: either way the body was refused.
    let sent = reqwest::Client::new()
        .post(format!("{}/graphql", api.base))
        .header("content-type", "application/json")
        .body(json!({ "query": deep_documents(100_000)[0].1 }).to_string())
        .send()
        .await;
    match sent {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let variables = format!(
        "{{\"query\": \"query($f: CustomerFilter) {{ viewer {{ role }} }}\", \"variables\": {{\"f\": {}}}}}",
        nested("[", "1", "]", 30_000)
    );
    let (status, body) = post_raw(&api, None, variables).await;
    assert_eq!(status, 400, "{body}");
    still_serving(&api, &guide).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_nested_thousands_deep_over_a_socket_is_refused_and_the_server_survives() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    let api = TestApi::start(&db).await;
    let guide = token(A, Role::Guide, Some("g1"), &[]);
    let mut ws = connect(&api, &guide).await;
    for (n, (place, document)) in deep_documents(7_000).into_iter().enumerate() {
        let answer = request(&mut ws, &n.to_string(), &document, json!({}))
            .await
            .expect("the socket stays open");
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("BAD_USER_INPUT"),
            "{place}: {answer}"
        );
    }
    // The socket still answers after all of them.
    let answer = request(&mut ws, "ok", "{ viewer { role } }", json!({}))
        .await
        .unwrap();
    assert_eq!(answer["data"]["viewer"]["role"], "guide", "{answer}");
    // 1e5 levels in a subscribe payload and in connection_init: more than a socket
    // message may carry, so the socket is closed; nothing else happens.
    send(
        &mut ws,
        json!({ "id": "deep", "type": "subscribe",
                "payload": { "query": deep_documents(100_000)[0].1 } }),
    )
    .await;
    while let Some(m) = receive(&mut ws, Duration::from_secs(5)).await {
        assert_eq!(
            m["type"], "complete",
            "only the last answer's end may come: {m}"
        );
    }
    // 30,000 levels of JSON in connection_init (60 KB, within a message): past
    // serde_json's recursion limit, refused.
    let mut raw = open(&api).await;
    send_text(
        &mut raw,
        format!(
            "{{\"type\": \"connection_init\", \"payload\": {{\"authorization\": {}}}}}",
            nested("[", "1", "]", 30_000)
        ),
    )
    .await;
    let answer = receive(&mut raw, Duration::from_secs(5)).await;
    assert_ne!(
        answer.map(|a| a["type"].clone()),
        Some(json!("connection_ack"))
    );
    still_serving(&api, &guide).await;
}

/// The parser wall itself, without the transports' size caps: 1e5 levels in every place
/// a value or selection appears, executed on a tokio worker (2 MiB of stack, where the
/// overflow happened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_1e5_levels_in_every_place_without_overflowing_a_worker_stack() {
    let db = TestDb::sqlite().await;
    let engine = std::sync::Arc::new(db.engine().await);
    let clock = engine::clock::Clock::System;
    let state = std::sync::Arc::new(graphql::ApiState {
        engine: engine.clone(),
        clock: clock.clone(),
        jobs: engine::jobs::Jobs::new(engine, clock),
        open_introspection: false,
        in_flight: std::sync::Arc::new(graphql::in_flight::InFlight::new(
            InFlightLimits::for_pool(10),
        )),
        wecom: wecom::client::WecomApi::default(),
    });
    let schema = graphql::build_schema(state);
    for (place, document) in deep_documents(100_000) {
        let schema = schema.clone();
        let response = tokio::spawn(async move { schema.execute(document.as_str()).await })
            .await
            .expect("the worker survives");
        let body = serde_json::to_value(&response).unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{place}: {body}"
        );
    }
}

/// How many of the server's connections wait on a lock (each is a request holding one).
async fn waiting_on_locks(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn idle_in_transaction(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'idle in transaction'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

const MY_CUSTOMERS: &str = "{ customers(first: 5) { edges { node { name } } } }";
const TAG_GROUPS: &str = "{ tagGroups(first: 5) { edges { node { name } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_guide_holds_at_most_their_share_of_the_pool_and_another_tenant_is_served() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start_with(&db, |s| {
        s.in_flight = Some(InFlightLimits {
            per_caller: 2,
            per_tenant: 4,
            wait: Duration::from_secs(2),
        });
    })
    .await;
    api.settle().await;
    let (guides_a, _) = guides(&api.engine.db, A).await;
    let (guide, store) = &guides_a[0];
    let me = token(A, Role::Guide, Some(guide), &[store]);
    let admin_b = token(B, Role::Admin, None, &[]);
    let pool = pg(&db.db).clone();

    // Ten sockets with one query each: every answer gives its connection back.
    let mut sockets = Vec::new();
    for n in 0..10 {
        let mut ws = connect(&api, &me).await;
        let answer = request(&mut ws, &n.to_string(), MY_CUSTOMERS, json!({}))
            .await
            .unwrap();
        assert!(answer["errors"].is_null(), "{answer}");
        sockets.push(ws);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while idle_in_transaction(&pool).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(idle_in_transaction(&pool).await, 0);

    // Fifty requests from the guide that cannot finish (their table is locked), over
    // HTTP and over the ten sockets.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE rm_customer IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let mut load = Vec::new();
    for _ in 0..40 {
        let api_base = api.base.clone();
        let me = me.clone();
        load.push(tokio::spawn(async move {
            let body = reqwest::Client::new()
                .post(format!("{api_base}/graphql"))
                .bearer_auth(me)
                .json(&json!({ "query": MY_CUSTOMERS }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            error_code(&body)
        }));
    }
    for (n, ws) in sockets.iter_mut().enumerate() {
        send(
            ws,
            json!({ "id": format!("locked-{n}"), "type": "subscribe",
                    "payload": { "query": MY_CUSTOMERS } }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = waiting_on_locks(&pool).await;
    assert!(held <= 2, "the guide holds {held} connections");
    // Meanwhile another tenant's admin is served, and the server is ready.
    let started = Instant::now();
    let body = post(&api, Some(&admin_b), TAG_GROUPS, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    // Well inside the pool's 5 s acquire timeout, which is what it waited before.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let ready = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Released well before the guide's blocked statements reach their 5 s timeout.
    lock.rollback().await.unwrap();

    // Each of the guide's requests was answered, or refused as rate limited: none
    // failed inside.
    for request in load {
        let code = request.await.unwrap();
        assert!(
            code.is_none() || code.as_deref() == Some("RATE_LIMITED"),
            "{code:?}"
        );
    }
    for (n, ws) in sockets.iter_mut().enumerate() {
        let id = format!("locked-{n}");
        loop {
            let m = receive(ws, Duration::from_secs(10)).await.expect("open");
            if m["id"] != id.as_str() {
                continue;
            }
            let payload = if m["type"] == "error" {
                json!({ "errors": m["payload"] })
            } else {
                m["payload"].clone()
            };
            let code = error_code(&payload);
            assert!(
                code.is_none() || code.as_deref() == Some("RATE_LIMITED"),
                "{payload}"
            );
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while idle_in_transaction(&pool).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(idle_in_transaction(&pool).await, 0);
}

const CREATE_GROUP: &str = "mutation($i: CreateTagGroupInput!) { createTagGroup(input: $i) { \
    userErrors { code } } }";
const REBUILD: &str = "mutation($i: StartRebuildInput!) { startRebuild(input: $i) { replayed \
    job { id createdBy } userErrors { code } } }";

async fn events_of(db: &Database, t: &str) -> i64 {
    on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = $1")
            .bind(t)
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

async fn jobs(db: &Database) -> i64 {
    on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

on_both_backends! {
    async fn a_tenant_nobody_registered_or_that_was_disabled_is_refused(db: TestDb) {
        db.db.migrate().await.unwrap();
        let api = TestApi::start(&db).await;
        let store = &api.engine.db;
        // A token signed with the right secret for a tenant nobody created.
        let ghost = token("ghost-tenant", Role::Admin, None, &[]);
        let key = Uuid::new_v4().to_string();
        let body = post(&api, Some(&ghost), CREATE_GROUP,
            json!({ "i": { "name": "幽灵", "idempotencyKey": key } })).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = post(&api, Some(&ghost), REBUILD, json!({ "i": { "idempotencyKey": key } })).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        assert_eq!(events_of(store, "ghost-tenant").await, 0);
        assert_eq!(jobs(store).await, 0);
        // Nor its API key (made before the tenant went away), nor over a socket.
        let ghost_key = ApiKeys::new(store)
            .create(&tenant("ghost-tenant"), "crm-sync", Role::Operations, &[])
            .await
            .unwrap();
        let body = post(&api, Some(&ghost_key.token), CREATE_GROUP,
            json!({ "i": { "name": "幽灵", "idempotencyKey": key } })).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let mut ws = open(&api).await;
        send(&mut ws, json!({ "type": "connection_init",
            "payload": { "authorization": format!("Bearer {ghost}") } })).await;
        let answer = receive(&mut ws, Duration::from_secs(5)).await;
        assert_ne!(answer.as_ref().map(|a| a["type"].clone()), Some(json!("connection_ack")));
        assert_eq!(events_of(store, "ghost-tenant").await, 0);

        // A registered tenant is served until it is disabled, then refused on its next
        // request, and its open socket is closed.
        register(store, "leaving").await;
        let ops = token("leaving", Role::Operations, None, &[]);
        let body = post(&api, Some(&ops), CREATE_GROUP,
            json!({ "i": { "name": "会员", "idempotencyKey": Uuid::new_v4().to_string() } })).await;
        assert_eq!(body["data"]["createTagGroup"]["userErrors"], json!([]), "{body}");
        let mut socket = connect(&api, &ops).await;
        assert!(engine::tenants::set_disabled(store, &tenant("leaving"), Some(chrono::Utc::now()))
            .await
            .unwrap());
        tokio::time::sleep(engine::tenants::TenantDirectory::TTL + Duration::from_millis(200)).await;
        let before = events_of(store, "leaving").await;
        let body = post(&api, Some(&ops), CREATE_GROUP,
            json!({ "i": { "name": "离开", "idempotencyKey": Uuid::new_v4().to_string() } })).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        assert_eq!(events_of(store, "leaving").await, before);
        let closed = receive(&mut socket, server::ws::RECHECK * 2).await;
        assert_eq!(closed, None);
        // Enabled again, it is served again.
        engine::tenants::set_disabled(store, &tenant("leaving"), None).await.unwrap();
        tokio::time::sleep(engine::tenants::TenantDirectory::TTL + Duration::from_millis(200)).await;
        let body = post(&api, Some(&ops), "{ viewer { role } }", json!({})).await;
        assert_eq!(body["data"]["viewer"]["role"], "operations", "{body}");
    }
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_over_a_socket_is_for_admins_only_as_over_http() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    let api = TestApi::start(&db).await;
    for (role, allowed) in [
        (Role::Guide, false),
        (Role::Operations, false),
        (Role::Analyst, false),
        (Role::Admin, true),
    ] {
        let bearer = token(A, role, Some("someone"), &[]);
        let mut ws = connect(&api, &bearer).await;
        let over_ws = request(&mut ws, "1", INTROSPECT, json!({})).await.unwrap();
        let over_http = post(&api, Some(&bearer), INTROSPECT, json!({})).await;
        for answer in [over_ws, over_http] {
            let name = &answer["data"]["__schema"]["queryType"]["name"];
            if allowed {
                assert_eq!(name, "Query", "{role:?}: {answer}");
            } else {
                assert!(name.is_null(), "{role:?}: {answer}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_repeated_hundreds_of_times_runs_once_and_root_fields_are_limited() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    // A tenant budget of 60 complexity points and no refill to speak of.
    let api = TestApi::start_with(&db, |s| {
        s.rate_limits.tenant_points = Rate::new(0.001, 60.0);
    })
    .await;
    let guide = token(A, Role::Guide, Some("g1"), &[]);
    // 700 copies of one field, no aliases: merged into one, it costs what one costs, so
    // five such requests fit the budget.
    let repeated = format!("{{ {} }}", "viewer { role } ".repeat(700));
    for n in 0..5 {
        let body = post(&api, Some(&guide), &repeated, json!({})).await;
        assert!(body["errors"].is_null(), "request {n}: {body}");
        assert_eq!(body["data"]["viewer"]["role"], "guide");
    }
    // Copies that differ are kept, and answered as one entry.
    let body = post(
        &api,
        Some(&guide),
        "{ viewer { role } viewer { subject } }",
        json!({}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], "g1", "{body}");
    // Thirty fragments, each with the same root field: thirty root fields resolved.
    let fragments: String = (0..30)
        .map(|n| format!("fragment F{n} on Query {{ viewer {{ role }} }} "))
        .collect();
    let spreads: String = (0..30).map(|n| format!("...F{n} ")).collect();
    let body = post(
        &api,
        Some(&guide),
        &format!("{{ {spreads} }} {fragments}"),
        json!({}),
    )
    .await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Too many root fields"), "{body}");
    assert!(body["data"].is_null(), "{body}");
}

const REMARK: &str = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { version replayed \
    userErrors { code } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_belongs_to_the_caller_who_sent_it() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start(&db).await;
    api.settle().await;
    let (guides_a, customer) = guides(&api.engine.db, A).await;
    let me = token(A, Role::Guide, Some(&guides_a[0].0), &[]);
    let colleague = token(A, Role::Guide, Some(&guides_a[1].0), &[]);
    let input = json!({ "i": {
        "customerId": ids::encode("Customer", &customer).to_string(),
        "remark": "喜欢金饰", "idempotencyKey": Uuid::new_v4().to_string() } });
    let first = post(&api, Some(&me), REMARK, input.clone()).await;
    assert_eq!(
        first["data"]["setRemark"]["userErrors"],
        json!([]),
        "{first}"
    );
    let version = first["data"]["setRemark"]["version"].clone();
    assert!(version.is_number(), "{first}");
    // A colleague who does not serve the customer resends the key and the input: the
    // customer is not theirs, and they learn nothing of the first answer.
    let theirs = post(&api, Some(&colleague), REMARK, input.clone()).await;
    let payload = &theirs["data"]["setRemark"];
    assert_eq!(payload["replayed"], false, "{theirs}");
    assert_eq!(payload["userErrors"][0]["code"], "NOT_FOUND", "{theirs}");
    assert!(payload["version"].is_null(), "{theirs}");
    // The sender's own retry is still a replay.
    let again = post(&api, Some(&me), REMARK, input).await;
    assert_eq!(again["data"]["setRemark"]["replayed"], true, "{again}");
    assert_eq!(again["data"]["setRemark"]["version"], version);

    // An analyst's key, resent by another analyst, does not hand them the first job.
    let first_analyst = token(A, Role::Analyst, Some("ana-1"), &[]);
    let second_analyst = token(A, Role::Analyst, Some("ana-2"), &[]);
    let rebuild = json!({ "i": { "projection": "repurchase_funnel",
                                  "idempotencyKey": Uuid::new_v4().to_string() } });
    let started = post(&api, Some(&first_analyst), REBUILD, rebuild.clone()).await;
    let job = started["data"]["startRebuild"]["job"]["id"].clone();
    assert!(job.is_string(), "{started}");
    let resent = post(&api, Some(&second_analyst), REBUILD, rebuild).await;
    assert_eq!(
        resent["data"]["startRebuild"]["replayed"], false,
        "{resent}"
    );
    assert_ne!(resent["data"]["startRebuild"]["job"]["id"], job, "{resent}");
    // And `job` on a payload shows only what `job(id:)` would.
    let seen = post(
        &api,
        Some(&second_analyst),
        "query($id: ID!) { job(id: $id) { id } }",
        json!({ "id": job }),
    )
    .await;
    assert!(seen["data"]["job"].is_null(), "{seen}");
}

on_both_backends! {
    async fn an_analyst_sees_their_own_tenants_projection_figures_and_which_is_stopped(db: TestDb) {
        let db = seeded(db, TWO_TENANTS).await;
        let api = TestApi::start(&db).await;
        api.settle().await;
        let store = &api.engine.db;
        let (own, all): (i64, i64) = on_pool!(store, |pool| {
            sqlx::query_as(
                "SELECT count(*) FILTER (WHERE tenant_id = 'acme'), count(*) FROM events",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        assert!(own < all);
        let last: i64 = on_pool!(store, |pool| {
            sqlx::query_scalar("SELECT max(position) FROM events WHERE tenant_id = 'acme'")
                .fetch_one(pool)
                .await
        })
        .unwrap();
        let analyst = token(A, Role::Analyst, None, &[]);
        let figures = "{ projections(first: 10) { edges { node { name checkpoint eventsApplied \
            eventsBehind } } } }";
        let check = |body: Value| {
            let edges = body["data"]["projections"]["edges"].as_array().cloned().unwrap_or_default();
            assert_eq!(edges.len(), projections::registry::ALL.len(), "{body}");
            for e in edges {
                let node = &e["node"];
                assert_eq!(node["eventsApplied"], own.to_string(), "{node}");
                assert_eq!(node["checkpoint"], last.to_string(), "{node}");
                assert_eq!(node["eventsBehind"], "0", "{node}");
            }
        };
        check(post(&api, Some(&analyst), figures, json!({})).await);
        // A rebuild from the whole log arrives at the same figures.
        projections::rebuild::rebuild_all(store, false).await.unwrap();
        check(post(&api, Some(&analyst), figures, json!({})).await);

        // An event no code can read stops the portrait alone; the query and /readyz
        // say which and why, without the event's content.
        on_pool!(store, |pool| sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ('TagLibrary', 'beta:library-x', 1, \
             'Nonsense', '1.0', '{\"Nonsense\": \"13912345678\"}', '{}')",
        )
        .execute(pool)
        .await
        .map(drop))
        .unwrap();
        assert!(projections::projector::catch_up(store).await.is_err());
        let body = post(&api, Some(&analyst), "{ projections(first: 10) { edges { node { name \
            stopped stoppedReason stoppedSince } } } }", json!({})).await;
        let nodes: Vec<Value> = body["data"]["projections"]["edges"].as_array().unwrap()
            .iter().map(|e| e["node"].clone()).collect();
        for node in &nodes {
            let portrait = node["name"] == "customer_portrait";
            assert_eq!(node["stopped"], portrait, "{node}");
            assert_eq!(node["stoppedReason"], if portrait { json!("BAD_EVENT") } else { Value::Null }, "{node}");
            assert_eq!(node["stoppedSince"].is_string(), portrait, "{node}");
        }
        let ready = api.http.get(format!("{}/readyz", api.base)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["degraded"], true, "{ready}");
        assert!(!ready.to_string().contains("13912345678"), "{ready}");
        let portrait = ready["projections"].as_array().unwrap().iter()
            .find(|p| p["name"] == "customer_portrait").unwrap().clone();
        assert_eq!(portrait["stopped"]["kind"], "BAD_EVENT", "{ready}");
    }
}

on_both_backends! {
    async fn an_upgrade_registers_the_tenants_a_deployment_already_serves(db: TestDb) {
        db.db.migrate().await.unwrap();
        let store = &db.db;
        // What a deployment from before tenant registration holds: an integration's
        // key and a tenant's projection progress, with no tenants row; and a tenant
        // that was registered and then disabled.
        ApiKeys::new(store)
            .create(&tenant("old-co"), "erp", Role::Operations, &[])
            .await
            .unwrap();
        on_pool!(store, |pool| sqlx::query(
            "INSERT INTO projection_tenant_progress (name, tenant_id, events, txid, position) \
             VALUES ('customer_portrait', 'busy-co', 10, 0, 10)"
        )
        .execute(pool)
        .await
        .map(drop))
        .unwrap();
        register(store, "gone-co").await;
        engine::tenants::set_disabled(store, &tenant("gone-co"), Some(chrono::Utc::now()))
            .await
            .unwrap();
        let sql = match store {
            Database::Postgres(_) => include_str!("../../../migrations/postgres/0010_register_existing_tenants.sql"),
            Database::Sqlite(_) => include_str!("../../../migrations/sqlite/0010_register_existing_tenants.sql"),
        };
        on_pool!(store, |pool| sqlx::raw_sql(sql).execute(pool).await.map(drop)).unwrap();
        use engine::tenants::{status, TenantStatus};
        assert_eq!(status(store, &tenant("old-co")).await.unwrap(), TenantStatus::Active);
        assert_eq!(status(store, &tenant("busy-co")).await.unwrap(), TenantStatus::Active);
        assert_eq!(status(store, &tenant("gone-co")).await.unwrap(), TenantStatus::Disabled);
        assert_eq!(status(store, &tenant("never-co")).await.unwrap(), TenantStatus::Unknown);
    }
}
