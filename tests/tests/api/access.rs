//! Who can reach what, over real HTTP against PostgreSQL with two seeded tenants: every
//! root field unauthenticated, with the wrong role and across tenants; a guide's exact
//! customer set; a handover moving visibility from one guide to the other.

use std::collections::BTreeSet;

use domain::customer::{AcceptTrigger, CustomerCommand, HandoverKind};
use domain::stamp::{stream_id, Stamped};
use engine::auth::Role;
use engine::commands::{Actor, CommandMeta};
use graphql::ids;
use harness::ids::{staff, tenant};
use harness::live::{error_code, token, TestApi};
use harness::world::{busiest_guides, served, sole_customer, TWO_TENANTS};
use harness::TestDb;
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const A: &str = "acme";
const B: &str = "beta";

struct World {
    db: TestDb,
    api: TestApi,
    /// A guide of tenant A with customers, their store, and one of their customers.
    guide: String,
    store: String,
    customer: String,
    /// Another active guide of tenant A.
    other_guide: String,
    /// A guide of tenant B.
    guide_b: String,
}

async fn rows(db: &engine::db::Database, sql: &str, tenant: &str) -> Vec<(String, String)> {
    on_pool!(db, |pool| {
        sqlx::query_as(sql).bind(tenant).fetch_all(pool).await
    })
    .expect("query")
}

async fn world() -> World {
    let (db, api) = served(TestDb::postgres().await, TWO_TENANTS).await;
    let guides = busiest_guides(&api.engine.db, A).await;
    let (guide, store) = guides[0].clone();
    let other_guide = guides[1].0.clone();
    let guide_b = busiest_guides(&api.engine.db, B).await[0].0.clone();
    // A customer only `guide` serves, so a handover leaves no other relation behind.
    let customer = sole_customer(&api.engine.db, A, &guide).await.unwrap();
    World {
        db,
        api,
        guide,
        store,
        customer,
        other_guide,
        guide_b,
    }
}

fn customer_id(local: &str) -> String {
    ids::encode("Customer", local).0
}

/// Every customer a guide's `customers` list returns, paging 7 at a time.
async fn listed(api: &TestApi, token: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let body = api
            .gql(
                Some(token),
                "query($after: String) { customers(first: 7, after: $after) { \
                   pageInfo { hasNextPage endCursor } edges { node { externalUserId } } } }",
                json!({ "after": after }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let page = &body["data"]["customers"];
        for edge in page["edges"].as_array().unwrap() {
            assert!(seen.insert(edge["node"]["externalUserId"].as_str().unwrap().to_string()));
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return seen;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

async fn served_by(db: &engine::db::Database, tenant: &str, staff: &str) -> BTreeSet<String> {
    rows(
        db,
        "SELECT customer_id, staff_id FROM rm_customer_staff WHERE tenant_id = $1",
        tenant,
    )
    .await
    .into_iter()
    .filter(|(_, s)| s == staff)
    .map(|(c, _)| c)
    .collect()
}

/// One document per root field, with the roles that may call it. A root field missing
/// from this table fails the test: new fields must say who may use them.
fn root_fields(w: &World) -> Vec<(&'static str, String, Value, &'static [Role])> {
    use engine::auth::Role::*;
    const ANYONE: &[Role] = &[Guide, StoreManager, Operations, Analyst, Admin];
    const GUIDES: &[Role] = &[Guide, StoreManager];
    const OPS: &[Role] = &[Operations, Admin];
    const ANALYSTS: &[Role] = &[Analyst, Admin];
    const OPS_AND_ANALYSTS: &[Role] = &[Operations, Analyst, Admin];
    let c = customer_id(&w.customer);
    let key = || Uuid::new_v4().to_string();
    let m = |field: &str, input_type: &str, selection: &str| {
        format!("mutation($i: {input_type}!) {{ {field}(input: $i) {{ {selection} }} }}")
    };
    vec![
        ("viewer", "{ viewer { subject } }".into(), json!({}), ANYONE),
        (
            "tenantLanguage",
            "{ tenantLanguage }".into(),
            json!({}),
            ANYONE,
        ),
        (
            "customer",
            "query($id: ID!) { customer(id: $id) { externalUserId } }".into(),
            json!({ "id": c }),
            ANYONE,
        ),
        (
            "customers",
            "{ customers(first: 5) { edges { node { externalUserId } } } }".into(),
            json!({}),
            ANYONE,
        ),
        (
            "audience",
            "{ audience { size } }".into(),
            json!({}),
            &[StoreManager, Operations, Admin],
        ),
        (
            "campaigns",
            "{ campaigns(first: 5) { nodes { id text } } }".into(),
            json!({}),
            OPS_AND_ANALYSTS,
        ),
        (
            "campaignResults",
            "query($id: ID!) { campaignResults(id: $id) { windowDays } }".into(),
            json!({ "id": "Sm9iOm5vbmU" }),
            OPS_AND_ANALYSTS,
        ),
        (
            "channelCodes",
            "{ channelCodes(first: 5) { nodes { state } } }".into(),
            json!({}),
            OPS_AND_ANALYSTS,
        ),
        (
            "welcomeMessage",
            "{ welcomeMessage { text } }".into(),
            json!({}),
            OPS,
        ),
        (
            "staffMembers",
            "{ staffMembers(first: 5) { edges { node { staffId } } } }".into(),
            json!({}),
            OPS,
        ),
        (
            "staffMember",
            "query($id: ID!) { staffMember(id: $id) { staffId } }".into(),
            json!({ "id": ids::encode("Staff", &w.guide).0 }),
            OPS,
        ),
        (
            "departures",
            "{ departures(first: 5) { edges { node { staffId } } } }".into(),
            json!({}),
            OPS,
        ),
        (
            "wecomNotices",
            "{ wecomNotices(first: 5) { edges { node { kind status } } } }".into(),
            json!({}),
            OPS,
        ),
        (
            "wecomUnassignedCustomers",
            "{ wecomUnassignedCustomers(first: 5) { edges { node { staffId } } } }".into(),
            json!({}),
            OPS,
        ),
        (
            "wecomDepartments",
            "{ wecomDepartments(first: 5) { edges { node { departmentId storeId } } } }".into(),
            json!({}),
            OPS,
        ),
        (
            "tagGroups",
            "{ tagGroups(first: 5) { edges { node { groupId } } } }".into(),
            json!({}),
            ANYONE,
        ),
        (
            "funnel",
            "{ funnel(by: STORE, first: 5) { edges { node { key } } } }".into(),
            json!({}),
            ANALYSTS,
        ),
        (
            "couponRedemption",
            "{ couponRedemption(by: CAMPAIGN, first: 5) { edges { node { key } } } }".into(),
            json!({}),
            ANALYSTS,
        ),
        (
            "projections",
            "{ projections(first: 5) { edges { node { name } } } }".into(),
            json!({}),
            ANALYSTS,
        ),
        (
            "job",
            "query($id: ID!) { job(id: $id) { status } }".into(),
            json!({ "id": ids::encode("Job", "none").0 }),
            OPS_AND_ANALYSTS,
        ),
        (
            "tagCustomer",
            m("tagCustomer", "TagCustomerInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "tagId": "et-intent-gift", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "untagCustomer",
            m("untagCustomer", "UntagCustomerInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "tagId": "et-intent-gift", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "setRemark",
            m("setRemark", "SetRemarkInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "remark": "VIP", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            // These tokens carry no `pii` scope, without which no role may erase
            // (api::erasure shows an admin with it can).
            "eraseCustomer",
            m("eraseCustomer", "EraseCustomerInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "reason": "test", "idempotencyKey": key() } }),
            &[],
        ),
        (
            "issueCoupon",
            m("issueCoupon", "IssueCouponInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "campaignId": "campaign-x", "valueFen": 1000,
                          "expiresAt": "2099-01-01T00:00:00Z", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "redeemCoupon",
            m("redeemCoupon", "RedeemCouponInput", "userErrors { code }"),
            json!({ "i": { "customerId": c, "couponId": "cp-none", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "recordPurchase",
            m(
                "recordPurchase",
                "RecordPurchaseInput",
                "userErrors { code }",
            ),
            json!({ "i": { "customerId": c, "orderId": format!("od-{}", Uuid::new_v4().simple()),
                          "amountFen": 100, "storeId": w.store, "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "addCustomerToGroup",
            m(
                "addCustomerToGroup",
                "AddCustomerToGroupInput",
                "userErrors { code }",
            ),
            json!({ "i": { "customerId": c, "groupId": "wr-none", "idempotencyKey": key() } }),
            GUIDES,
        ),
        (
            "createTagGroup",
            m(
                "createTagGroup",
                "CreateTagGroupInput",
                "userErrors { code }",
            ),
            json!({ "i": { "name": format!("g{}", &key()[..8]), "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "createTag",
            m("createTag", "CreateTagInput", "userErrors { code }"),
            json!({ "i": { "groupId": "tg-none", "name": "x", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "renameTag",
            m("renameTag", "RenameTagInput", "userErrors { code }"),
            json!({ "i": { "tagId": "et-none", "name": "y", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "deleteTag",
            m("deleteTag", "DeleteTagInput", "userErrors { code }"),
            json!({ "i": { "tagId": "et-none", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "createCustomerGroup",
            m(
                "createCustomerGroup",
                "CreateCustomerGroupInput",
                "userErrors { code }",
            ),
            json!({ "i": { "ownerStaffId": "nobody", "name": "g", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "markStaffDeparted",
            m(
                "markStaffDeparted",
                "MarkStaffDepartedInput",
                "userErrors { code }",
            ),
            json!({ "i": { "staffId": "nobody", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "setCustomerLimit",
            m(
                "setCustomerLimit",
                "SetCustomerLimitInput",
                "userErrors { code }",
            ),
            json!({ "i": { "staffId": "nobody", "limit": 100, "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "setGroupCapacity",
            m(
                "setGroupCapacity",
                "SetGroupCapacityInput",
                "userErrors { code }",
            ),
            json!({ "i": { "capacity": 0, "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "setTenantLanguage",
            m(
                "setTenantLanguage",
                "SetTenantLanguageInput",
                "userErrors { code }",
            ),
            json!({ "i": { "language": "ZH_CN", "idempotencyKey": key() } }),
            &[Admin],
        ),
        (
            "startRebuild",
            m("startRebuild", "StartRebuildInput", "userErrors { code }"),
            json!({ "i": { "projection": "no_such_projection", "idempotencyKey": key() } }),
            ANALYSTS,
        ),
        (
            "mapWecomDepartment",
            m(
                "mapWecomDepartment",
                "MapWecomDepartmentInput",
                "userErrors { code }",
            ),
            json!({ "i": { "departmentId": 2, "storeId": "north-1", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "syncWecomDirectory",
            m(
                "syncWecomDirectory",
                "SyncWecomDirectoryInput",
                "userErrors { code }",
            ),
            json!({ "i": { "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "retryWecomNotices",
            m(
                "retryWecomNotices",
                "RetryWecomNoticesInput",
                "retried userErrors { code }",
            ),
            json!({ "i": { "dedupKeys": ["none"], "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "startWecomImport",
            m(
                "startWecomImport",
                "StartWecomImportInput",
                "userErrors { code }",
            ),
            json!({ "i": { "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "startCampaign",
            m("startCampaign", "StartCampaignInput", "userErrors { code }"),
            json!({ "i": { "kind": "MASS_MESSAGE", "text": "hi", "idempotencyKey": key() } }),
            &[StoreManager, Operations, Admin],
        ),
        (
            "setWelcomeMessage",
            m(
                "setWelcomeMessage",
                "SetWelcomeMessageInput",
                "userErrors { code }",
            ),
            json!({ "i": { "welcome": null, "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "createChannelCode",
            m(
                "createChannelCode",
                "CreateChannelCodeInput",
                "userErrors { code }",
            ),
            json!({ "i": { "name": "n", "staffIds": ["g"], "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "disableChannelCode",
            m(
                "disableChannelCode",
                "DisableChannelCodeInput",
                "userErrors { code }",
            ),
            json!({ "i": { "id": "Q2hhbm5lbENvZGU6bm9uZQ", "idempotencyKey": key() } }),
            OPS,
        ),
        (
            "startHandover",
            m("startHandover", "StartHandoverInput", "userErrors { code }"),
            json!({ "i": { "staffId": "nobody", "idempotencyKey": key() } }),
            OPS,
        ),
    ]
}

/// Root field names of `type <name> { ... }` in the SDL.
fn sdl_root_fields(sdl: &str, name: &str) -> BTreeSet<String> {
    let start = sdl.find(&format!("type {name} {{")).expect("root type");
    let body = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
    body.lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with('#'))
        .filter_map(|l| {
            let name: String = l.chars().take_while(|c| c.is_alphanumeric()).collect();
            (!name.is_empty() && l[name.len()..].starts_with(['(', ':'])).then_some(name)
        })
        .collect()
}

fn role_token(w: &World, tenant: &str, role: Role) -> String {
    let guide = if tenant == A { &w.guide } else { &w.guide_b };
    match role {
        Role::Guide | Role::StoreManager => token(tenant, role, Some(guide), &[&w.store]),
        other => token(tenant, other, None, &[]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_root_field_is_denied_without_a_token_with_the_wrong_role_and_across_tenants() {
    let w = world().await;
    let sdl = graphql::sdl();
    let table = root_fields(&w);
    let covered: BTreeSet<String> = table.iter().map(|(f, ..)| f.to_string()).collect();
    let mut declared = sdl_root_fields(&sdl, "Query");
    declared.extend(sdl_root_fields(&sdl, "Mutation"));
    assert_eq!(
        covered, declared,
        "every root field needs a row in root_fields()"
    );
    assert!(
        !sdl.contains("tenantId"),
        "no field may take or show a tenant id"
    );
    let all_roles = [
        Role::Guide,
        Role::StoreManager,
        Role::Operations,
        Role::Analyst,
        Role::Admin,
    ];
    let events_of_a = || async {
        on_pool!(&w.api.engine.db, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE tenant_id = $1")
                .bind(A)
                .fetch_one(pool)
                .await
        })
        .unwrap()
    };
    for (field, doc, vars, allowed) in &table {
        let body = w.api.gql(None, doc, vars.clone()).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{field} without a token: {body}"
        );
        assert!(
            body["data"].is_null() || body["data"][field].is_null(),
            "{field}: {body}"
        );
        for role in all_roles.iter().filter(|r| !allowed.contains(r)) {
            let body = w
                .api
                .gql(Some(&role_token(&w, A, *role)), doc, vars.clone())
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("FORBIDDEN"),
                "{field} as {role:?}: {body}"
            );
        }
        // Tenant B's callers, with tenant A's ids: nothing of A comes back or changes.
        let before = events_of_a().await;
        for role in allowed.iter() {
            let body = w
                .api
                .gql(Some(&role_token(&w, B, *role)), doc, vars.clone())
                .await;
            let text = body.to_string();
            assert!(
                !text.contains(&w.customer),
                "{field} as B's {role:?} leaked: {text}"
            );
        }
        assert_eq!(
            events_of_a().await,
            before,
            "{field} from tenant B changed tenant A"
        );
    }
    w.api.stop().await;
    drop(w.db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guide_sees_exactly_their_customers_and_a_handover_moves_them() {
    let w = world().await;
    let db = &w.api.engine.db;
    let guide = token(A, Role::Guide, Some(&w.guide), &[&w.store]);
    let other = token(A, Role::Guide, Some(&w.other_guide), &[&w.store]);
    assert_eq!(
        listed(&w.api, &guide).await,
        served_by(db, A, &w.guide).await
    );
    assert_eq!(
        listed(&w.api, &other).await,
        served_by(db, A, &w.other_guide).await
    );
    let open = |t: String| {
        let api = &w.api;
        let id = customer_id(&w.customer);
        async move {
            let body = api
                .gql(
                    Some(&t),
                    "query($id: ID!) { customer(id: $id) { externalUserId } }",
                    json!({ "id": id }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            !body["data"]["customer"].is_null()
        }
    };
    assert!(open(guide.clone()).await);
    assert!(
        !open(other.clone()).await,
        "another guide's customer is hidden"
    );

    // An on-job handover, accepted: the customer moves to the other guide.
    let t = tenant(A);
    let stream = stream_id(&t, &w.customer);
    let meta = CommandMeta::new(t.clone(), Actor::system("test"), Uuid::new_v4());
    let handover = Uuid::new_v4();
    let now = w.api.clock.now();
    w.api
        .engine
        .customers
        .execute(
            &stream,
            Stamped::new(
                now,
                CustomerCommand::RequestHandover {
                    handover,
                    from: staff(&w.guide),
                    to: staff(&w.other_guide),
                    kind: HandoverKind::OnJob,
                    from_departed_at: None,
                    successor_at_limit: false,
                },
            ),
            &meta,
        )
        .await
        .unwrap();
    w.api
        .engine
        .customers
        .execute(
            &stream,
            Stamped::new(
                now + chrono::Duration::minutes(5),
                CustomerCommand::AcceptHandover {
                    handover,
                    trigger: AcceptTrigger::Reported,
                },
            ),
            &CommandMeta::new(t.clone(), Actor::system("test"), Uuid::new_v4()),
        )
        .await
        .unwrap();
    w.api.settle().await;
    assert!(
        !open(guide.clone()).await,
        "the old guide no longer sees them"
    );
    assert!(open(other.clone()).await, "the successor does");
    assert!(!listed(&w.api, &guide).await.contains(&w.customer));
    assert!(listed(&w.api, &other).await.contains(&w.customer));
    // Operations see the whole tenant either way.
    assert!(open(token(A, Role::Operations, None, &[])).await);
    w.api.stop().await;
    drop(w.db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_manager_sees_their_stores_customers_and_no_others() {
    let w = world().await;
    let manager = token(A, Role::StoreManager, Some("manager-1"), &[&w.store]);
    let seen = listed(&w.api, &manager).await;
    let store_customers: BTreeSet<String> = rows(
        &w.api.engine.db,
        "SELECT r.customer_id, s.store_id FROM rm_customer_staff r JOIN rm_staff s \
         ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id WHERE r.tenant_id = $1",
        A,
    )
    .await
    .into_iter()
    .filter(|(_, store)| *store == w.store)
    .map(|(c, _)| c)
    .collect();
    assert_eq!(seen, store_customers);
    let nowhere = token(A, Role::StoreManager, Some("manager-2"), &[]);
    assert!(listed(&w.api, &nowhere).await.is_empty());
    w.api.stop().await;
    drop(w.db);
}
