//! API.md checklist items about cost over real HTTP and PostgreSQL: rate limits (#13),
//! the request deadline (#5) and index use by every customer read (#26).

use std::time::Duration;

use domain::values::{StaffId, StoreId};
use engine::auth::Role;
use engine::db::Database;
use engine::reads::{Arg, CustomerFilter, PortraitWants, Reads, Scope, Sql};
use graphql::ids;
use graphql::rate_limit::Rate;
use harness::ids::tenant;
use harness::live::{error_code, token, TestApi};
use harness::world::{seeded, TWO_TENANTS};
use harness::{pg, TestDb};
use serde_json::{json, Value};

const A: &str = "acme";
const B: &str = "beta";

/// A guide of `t`, their store and one customer they serve.
async fn guide(db: &TestDb, t: &str) -> (String, String, String) {
    sqlx::query_as(
        "SELECT r.staff_id, s.store_id, min(r.customer_id) FROM rm_customer_staff r \
         JOIN rm_staff s USING (tenant_id, staff_id) WHERE r.tenant_id = $1 \
         GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1",
    )
    .bind(t)
    .fetch_one(pg(&db.db))
    .await
    .unwrap()
}

/// POSTs and returns the status, the `Retry-After` header and the body.
async fn post(
    api: &TestApi,
    bearer: &str,
    query: &str,
    variables: Value,
) -> (u16, Option<String>, Value) {
    let response = api
        .http
        .post(format!("{}/graphql", api.base))
        .bearer_auth(bearer)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, response.json().await.unwrap())
}

const VIEWER: &str = "{ viewer { role } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_their_request_rate_gets_429_and_others_do_not() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start_with(&db, |s| s.rate_limits.per_caller = Rate::new(0.5, 3.0)).await;
    api.settle().await;
    let ops = token(A, Role::Operations, None, &[]);
    for _ in 0..3 {
        let (status, _, body) = post(&api, &ops, VIEWER, json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post(&api, &ops, VIEWER, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry} s");
    assert!(
        body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Another caller of the same tenant has their own bucket.
    let analyst = token(A, Role::Analyst, None, &[]);
    let (status, _, _) = post(&api, &analyst, VIEWER, json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_is_slowed_per_address() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start_with(&db, |s| s.rate_limits.anonymous = Rate::new(0.5, 2.0)).await;
    for _ in 0..2 {
        let (status, _, body) = post(&api, "not-a-token", VIEWER, json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }
    let (status, retry, body) = post(&api, "still-not-a-token", VIEWER, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some());
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"));
    // A valid token is judged by its own bucket, not the address's failures.
    let ops = token(A, Role::Operations, None, &[]);
    let (status, _, _) = post(&api, &ops, VIEWER, json!({})).await;
    assert_eq!(status, 200);
}

const PORTRAIT: &str = "query P($id: ID!) { customer(id: $id) { name \
    tags(first: 10) { edges { node { name } } } groups(first: 5) { edges { node { name } } } \
    timeline(first: 20) { edges { node { kind summary } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_complexity_budget_is_limited_and_another_tenant_is_not() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    // Room for one portrait (complexity about 130) and not a second.
    let api =
        TestApi::start_with(&db, |s| s.rate_limits.tenant_points = Rate::new(1.0, 200.0)).await;
    api.settle().await;
    let (staff, store, customer) = guide(&db, A).await;
    let id = ids::encode("Customer", &customer).to_string();
    let guide_a = token(A, Role::Guide, Some(&staff), &[&store]);
    let (status, _, first) = post(&api, &guide_a, PORTRAIT, json!({ "id": id })).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["data"]["customer"]["name"].is_string(), "{first}");
    let (status, retry, second) = post(&api, &guide_a, PORTRAIT, json!({ "id": id })).await;
    assert_eq!(status, 429, "{second}");
    assert!(retry.is_some());
    assert_eq!(error_code(&second).as_deref(), Some("RATE_LIMITED"));
    // Other callers of the same tenant share its budget ...
    let ops_a = token(A, Role::Operations, None, &[]);
    let (status, _, _) = post(&api, &ops_a, PORTRAIT, json!({ "id": id })).await;
    assert_eq!(status, 429);
    // ... while another tenant's is untouched.
    let (staff_b, store_b, customer_b) = guide(&db, B).await;
    let guide_b = token(B, Role::Guide, Some(&staff_b), &[&store_b]);
    let id_b = ids::encode("Customer", &customer_b).to_string();
    let (status, _, body) = post(&api, &guide_b, PORTRAIT, json!({ "id": id_b })).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_starting_mutations_have_a_small_bucket_and_replays_are_free() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start_with(&db, |s| s.rate_limits.heavy = Rate::per_minute(1.0, 1.0)).await;
    api.settle().await;
    let analyst = token(A, Role::Analyst, None, &[]);
    let start = "mutation S($key: String!) { startRebuild(input: { idempotencyKey: $key, \
                 projection: \"customer_portrait\" }) { job { id } userErrors { code } } }";
    let key = uuid::Uuid::new_v4().to_string();
    let (status, _, first) = post(&api, &analyst, start, json!({ "key": key })).await;
    assert_eq!(status, 200, "{first}");
    let job = first["data"]["startRebuild"]["job"]["id"].clone();
    assert!(job.is_string(), "{first}");
    // The same key again is a replay: the same job, not charged.
    let (status, _, replay) = post(&api, &analyst, start, json!({ "key": key })).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["data"]["startRebuild"]["job"]["id"], job);
    // A new job within the minute is refused.
    let other = uuid::Uuid::new_v4().to_string();
    let (status, retry, refused) = post(&api, &analyst, start, json!({ "key": other })).await;
    assert_eq!(status, 429, "{refused}");
    assert!(retry.is_some());
    assert_eq!(error_code(&refused).as_deref(), Some("RATE_LIMITED"));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1")
        .bind(A)
        .fetch_one(pg(&db.db))
        .await
        .unwrap();
    assert_eq!(jobs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_answers_timeout_and_the_server_recovers() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let api = TestApi::start_with(&db, |s| s.request_timeout = Duration::from_millis(300)).await;
    api.settle().await;
    let (staff, store, customer) = guide(&db, A).await;
    let id = ids::encode("Customer", &customer).to_string();
    let guide_a = token(A, Role::Guide, Some(&staff), &[&store]);
    // Another session holds the customer table, so the read waits past the deadline.
    let mut lock = pg(&db.db).begin().await.unwrap();
    sqlx::query("LOCK TABLE rm_customer IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let body = api.gql(Some(&guide_a), PORTRAIT, json!({ "id": id })).await;
    assert_eq!(error_code(&body).as_deref(), Some("TIMEOUT"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    lock.rollback().await.unwrap();
    let body = api.gql(Some(&guide_a), PORTRAIT, json!({ "id": id })).await;
    assert!(body["data"]["customer"]["name"].is_string(), "{body}");
}

/// Index names and relation names of every scan in an EXPLAIN (FORMAT JSON) plan.
fn scans(plan: &Value, out: &mut Vec<(String, String, Option<String>)>) {
    if let Some(node) = plan.as_object() {
        if let Some(relation) = node.get("Relation Name").and_then(Value::as_str) {
            out.push((
                node["Node Type"].as_str().unwrap().to_string(),
                relation.to_string(),
                node.get("Index Name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ));
        }
        for child in node.values() {
            scans(child, out);
        }
    } else if let Some(items) = plan.as_array() {
        for item in items {
            scans(item, out);
        }
    }
}

/// EXPLAINs `sql` as the API runs it (as `scrm_app`, tenant set) with sequential scans
/// priced out, so a scan that still reads a whole table means no index serves it.
async fn explain(db: &Database, t: &str, sql: &Sql) -> Vec<(String, String, Option<String>)> {
    let plan = plan(db, t, sql, "enable_seqscan").await;
    let mut out = Vec::new();
    scans(&plan, &mut out);
    out
}

/// The EXPLAIN (FORMAT JSON) plan of `sql` as `scrm_app` for tenant `t`, with the
/// planner setting `off` turned off.
async fn plan(db: &Database, t: &str, sql: &Sql, off: &str) -> Value {
    let mut tx = pg(db).begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'scrm_app', true), set_config('app.tenant_id', $1, true), \
         set_config($2, 'off', true)",
    )
    .bind(t)
    .bind(off)
    .execute(&mut *tx)
    .await
    .unwrap();
    let text = format!("EXPLAIN (FORMAT JSON) {}", sql.text);
    let mut q = sqlx::query_scalar::<_, Value>(&text);
    for arg in &sql.args {
        q = match arg {
            Arg::Text(v) => q.bind(v.clone()),
            Arg::Int(v) => q.bind(*v),
            Arg::Time(v) => q.bind(*v),
        };
    }
    q.fetch_one(&mut *tx).await.unwrap()
}

async fn first_column(db: &Database, index: &str) -> String {
    sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
         WHERE c.relname = $1",
    )
    .bind(index)
    .fetch_one(pg(db))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_read_is_served_by_tenant_leading_indexes() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let engine = db.engine().await;
    projections::projector::catch_up(&engine.db).await.unwrap();
    let (staff, store, customer) = guide(&db, A).await;
    let reads = Reads::new(&db.db, &tenant(A));
    let now = chrono::Utc::now();
    let filtered = CustomerFilter {
        stages: vec!["first_purchase".into(), "repurchase".into()],
        has_unredeemed_coupon: Some(false),
        ..CustomerFilter::default()
    };
    let staff_scope = Scope::Staff(StaffId::parse(staff.as_str()).unwrap());
    let store_scope = Scope::Stores(vec![StoreId::parse(store.as_str()).unwrap()]);
    let everything = PortraitWants {
        relations: true,
        tags: true,
        groups: true,
        coupons: true,
        timeline: Some(21),
    };
    let statements = [
        (
            "guide list",
            reads.customers_sql(&staff_scope, &filtered, None, 21, now),
        ),
        (
            "guide list, next page",
            reads.customers_sql(
                &staff_scope,
                &CustomerFilter::default(),
                Some((now, customer.clone())),
                21,
                now,
            ),
        ),
        (
            "store list",
            reads.customers_sql(&store_scope, &filtered, None, 21, now),
        ),
        (
            "tenant list",
            reads.customers_sql(&Scope::Tenant, &CustomerFilter::default(), None, 21, now),
        ),
        (
            "portrait",
            reads.portrait_sql(&staff_scope, &customer, everything),
        ),
    ];
    for (name, sql) in &statements {
        let scans = explain(&db.db, A, sql).await;
        assert!(!scans.is_empty(), "{name}: no scans in the plan");
        for (node, relation, index) in &scans {
            assert!(!node.contains("Seq Scan"), "{name}: {node} on {relation}");
            if let Some(index) = index {
                let leading = first_column(&db.db, index).await;
                let expected = if relation == "events" {
                    "aggregate_type"
                } else {
                    "tenant_id"
                };
                assert_eq!(leading, expected, "{name}: {relation} via {index}");
            }
        }
    }
}

/// Every node type of an EXPLAIN (FORMAT JSON) plan.
fn node_types(plan: &Value, out: &mut Vec<String>) {
    if let Some(node) = plan.as_object() {
        if let Some(kind) = node.get("Node Type").and_then(Value::as_str) {
            out.push(kind.to_string());
        }
        node.values().for_each(|child| node_types(child, out));
    } else if let Some(items) = plan.as_array() {
        items.iter().for_each(|item| node_types(item, out));
    }
}

/// A guide's list is a walk of the guide's relations in last-activity order (the
/// relation carries the customer's sort key and stage): the page is read from an index
/// range, never by reading every customer the guide serves and sorting them, which is
/// what made the list 275 req/s at the bench scale (BENCHMARKS.md, issue 19). Sorting is
/// priced out, so a plan that still sorts means no index gives the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guides_list_is_read_from_the_relation_index_in_order() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let engine = db.engine().await;
    projections::projector::catch_up(&engine.db).await.unwrap();
    let (staff, _, customer) = guide(&db, A).await;
    let reads = Reads::new(&db.db, &tenant(A));
    let now = chrono::Utc::now();
    let scope = Scope::Staff(StaffId::parse(staff.as_str()).unwrap());
    let filtered = CustomerFilter {
        stages: vec!["first_purchase".into(), "repurchase".into(), "loyal".into()],
        has_unredeemed_coupon: Some(false),
        ..CustomerFilter::default()
    };
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE c.relname = 'rm_customer_staff_ix1' ORDER BY k.n",
    )
    .fetch_all(pg(&db.db))
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "tenant_id",
            "staff_id",
            "last_activity_at",
            "customer_id",
            "stage"
        ]
    );
    for (name, sql) in [
        (
            "first page",
            reads.customers_sql(&scope, &filtered, None, 21, now),
        ),
        (
            "next page",
            reads.customers_sql(&scope, &filtered, Some((now, customer.clone())), 21, now),
        ),
    ] {
        let plan = plan(&db.db, A, &sql, "enable_sort").await;
        let mut found = Vec::new();
        scans(&plan, &mut found);
        let mut kinds = Vec::new();
        node_types(&plan, &mut kinds);
        assert!(
            found
                .iter()
                .any(|(_, relation, index)| relation == "rm_customer_staff"
                    && index.as_deref() == Some("rm_customer_staff_ix1")),
            "{name}: {found:?}"
        );
        assert!(
            !kinds.iter().any(|k| k.contains("Sort")),
            "{name}: the plan sorts: {kinds:?}"
        );
    }
}

/// The connections a tenant's reads use took the unprivileged role, the tenant and
/// read-only mode when they were opened, and row-level security holds on them even for a
/// statement with no tenant predicate of its own; another tenant's reads get other
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_bound_connections_see_only_their_tenant() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let engine = db.engine().await;
    projections::projector::catch_up(&engine.db).await.unwrap();
    for (t, other) in [(A, B), (B, A)] {
        let pool = engine::reads::bound::tenant_pool(pg(&db.db), &tenant(t))
            .await
            .unwrap()
            .expect("a single PostgreSQL binds connections");
        let (user, setting, read_only): (String, String, String) = sqlx::query_as(
            "SELECT current_user::text, current_setting('app.tenant_id'), \
             current_setting('transaction_read_only')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (user.as_str(), setting.as_str(), read_only.as_str()),
            ("scrm_app", t, "on")
        );
        let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM rm_customer")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(tenants, [t.to_string()], "{t} reads only its own rows");
        let written = sqlx::query("DELETE FROM rm_customer WHERE tenant_id = $1")
            .bind(other)
            .execute(&pool)
            .await;
        assert!(written.is_err(), "a read connection cannot write");
    }
}
