//! Erasure under PIPL by crypto-shredding: a customer's name, phone and remark are
//! sealed in the log from the start; erasing them destroys their key, and afterwards
//! no table holds them (a rebuild included), while their events keep their kinds and
//! counts.

use domain::customer::CustomerCommand;
use domain::Stamped;
use engine::auth::Role;
use engine::commands::{Actor, CommandMeta};
use engine::db::Database;
use harness::live::{token, token_with_scopes};
use harness::on_both_backends;
use harness::world::{served, ONE_TENANT};
use projections::on_pool;
use serde_json::json;
use uuid::Uuid;

const NAME: &str = "欧阳删除测";
const PHONE: &str = "19900007731";
const REMARK: &str = "删除测专属备注";

const PORTRAIT: &str = "query($id: ID!) { customer(id: $id) { name erasedAt purchases \
    staff(first: 10) { edges { node { staffId remark } } } \
    timeline(first: 100) { edges { node { kind summary } } } } }";

/// Every table of the database, as text, searched for `needle`: (table, rows).
pub async fn tables_holding(db: &Database, needle: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    match db {
        Database::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for t in tables {
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM \"{t}\" x WHERE strpos(x::text, $1) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await
                .unwrap();
                if n > 0 {
                    found.push((t, n));
                }
            }
        }
        Database::Sqlite(pool) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for t in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                        .bind(&t)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let test = columns
                    .iter()
                    .map(|c| format!("instr(CAST(\"{c}\" AS TEXT), $1) > 0"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                let n: i64 =
                    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\" WHERE {test}"))
                        .bind(needle)
                        .fetch_one(pool)
                        .await
                        .unwrap();
                if n > 0 {
                    found.push((t, n));
                }
            }
        }
    }
    found
}

async fn events_of(db: &Database, stream: &str) -> Vec<String> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(stream)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

/// WeCom tells the engine the customer's name and phone (as a contact notice does).
async fn wecom_reports_profile(api: &harness::live::TestApi, stream: &str) {
    let meta = CommandMeta::new(
        domain::values::TenantId::parse_slug("acme").unwrap(),
        Actor::integration("wecom"),
        Uuid::new_v4(),
    );
    let profile = CustomerCommand::UpdateProfile {
        name: NAME.into(),
        phone: Some(PHONE.into()),
    };
    api.engine
        .customers
        .execute(stream, Stamped::new(api.clock.now(), profile), &meta)
        .await
        .unwrap();
}

on_both_backends! {
    async fn an_erased_customer_is_nowhere_in_the_database_not_even_after_a_rebuild(db: TestDb) {
        let (_db, api) = served(db, ONE_TENANT).await;
        let db = &api.engine.db;
        let (guide, customer): (String, String) = on_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT staff_id, customer_id FROM rm_customer_staff WHERE tenant_id = 'acme' \
                 ORDER BY customer_id, staff_id LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        let stream = format!("acme:{customer}");
        // WeCom tells the engine who the customer is; the guide writes a remark, and
        // keeps the answer (which shows the name) under an idempotency key.
        wecom_reports_profile(&api, &stream).await;
        let me = token("acme", Role::Guide, Some(&guide), &[]);
        let id = graphql::ids::encode("Customer", &customer).to_string();
        let remark = "mutation($i: SetRemarkInput!) { setRemark(input: $i) { \
            userErrors { code } customer { name staff(first: 5) { edges { node { remark } } } } } }";
        let vars = json!({ "i": { "customerId": id, "remark": REMARK,
            "idempotencyKey": Uuid::new_v4().to_string() } });
        let body = api.gql(Some(&me), remark, vars).await;
        assert_eq!(body["data"]["setRemark"]["userErrors"], json!([]), "{body}");
        assert_eq!(body["data"]["setRemark"]["customer"]["name"], NAME, "{body}");

        // Sealed in the log from the start: the name, phone and remark are in the read
        // models (that is what a guide reads) but not in the events.
        for needle in [NAME, PHONE, REMARK] {
            let tables: Vec<String> =
                tables_holding(db, needle).await.into_iter().map(|(t, _)| t).collect();
            assert!(!tables.contains(&"events".to_string()), "{needle} in the clear: {tables:?}");
            assert!(tables.iter().any(|t| t.starts_with("rm_")), "{needle} not found: {tables:?}");
        }
        let before = events_of(db, &stream).await;

        // Only an admin who sees personal data may erase.
        let erase = "mutation($i: EraseCustomerInput!) { eraseCustomer(input: $i) { \
            userErrors { code field } customer { name erasedAt } } }";
        let vars = |reason: &str| json!({ "i": { "customerId": id, "reason": reason,
            "idempotencyKey": Uuid::new_v4().to_string() } });
        let admin = token("acme", Role::Admin, None, &[]);
        for caller in [&me, &admin] {
            let body = api.gql(Some(caller), erase, vars("客户申请删除")).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
        }
        let dpo = token_with_scopes("acme", Role::Admin, None, &[], &["pii"]);
        let body = api.gql(Some(&dpo), erase, vars(" ")).await;
        assert_eq!(body["data"]["eraseCustomer"]["userErrors"][0]["code"], "EMPTY_REASON", "{body}");
        let body = api.gql(Some(&dpo), erase, vars("客户申请删除")).await;
        assert_eq!(body["data"]["eraseCustomer"]["userErrors"], json!([]), "{body}");
        assert_eq!(body["data"]["eraseCustomer"]["customer"]["name"], json!(null), "{body}");
        assert!(body["data"]["eraseCustomer"]["customer"]["erasedAt"].is_string(), "{body}");
        let body = api.gql(Some(&dpo), erase, vars("again")).await;
        assert_eq!(body["data"]["eraseCustomer"]["userErrors"][0]["code"], "ALREADY_ERASED", "{body}");

        // The events keep their kinds and counts, plus the erasure.
        let after = events_of(db, &stream).await;
        assert_eq!(after[..before.len()], before[..]);
        assert_eq!(after[before.len()..], ["CustomerErased".to_string()]);

        // The guide still serves the customer and reads what they did, not who they were.
        let mut portrait = json!(null);
        for _ in 0..100 {
            portrait = api.gql(Some(&me), PORTRAIT, json!({ "id": id })).await;
            if portrait["data"]["customer"]["erasedAt"].is_string() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let c = &portrait["data"]["customer"];
        assert!(c["erasedAt"].is_string(), "{portrait}");
        assert_eq!(c["name"], json!(null));
        let text = portrait.to_string();
        assert!(text.contains("客户的个人信息已删除：客户申请删除"), "{portrait}");
        assert!(text.contains("修改了备注"), "{portrait}");
        for needle in [NAME, PHONE, REMARK] {
            assert!(!text.contains(needle), "{needle} in {portrait}");
            assert_eq!(tables_holding(db, needle).await, vec![], "{needle} after erasure");
        }

        // A rebuild from the log keeps them erased.
        projections::rebuild::rebuild_all(db, false).await.unwrap();
        for needle in [NAME, PHONE, REMARK] {
            assert_eq!(tables_holding(db, needle).await, vec![], "{needle} after a rebuild");
        }
        let (name, erased): (Option<String>, Option<String>) = on_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT name, CAST(erased_at AS TEXT) FROM rm_customer \
                 WHERE tenant_id = 'acme' AND customer_id = $1",
            )
            .bind(&customer)
            .fetch_one(pool)
            .await
        })
        .unwrap();
        assert_eq!(name, None);
        assert!(erased.is_some());

        // What WeCom says about them later is recorded without who they are.
        wecom_reports_profile(&api, &stream).await;
        assert_eq!(events_of(db, &stream).await.last().map(String::as_str), Some("ProfileUpdated"));
        for needle in [NAME, PHONE] {
            assert_eq!(tables_holding(db, needle).await, vec![], "{needle} after a new notice");
        }
        api.stop().await;
    }
}
