//! PostgreSQL's second wall between tenants: row-level security on every tenant table,
//! an app role that cannot bypass it, and transaction-local tenant settings that never
//! leak from one request to the next on a shared connection.

use engine::db::Database;
use engine::reads::{CustomerFilter, Reads, Scope};
use harness::ids::tenant;
use harness::world::{seeded, TWO_TENANTS};
use harness::{pg, TestDb};
use sqlx::postgres::PgPoolOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_forces_row_level_security_and_keys_on_the_tenant() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let pool = pg(&db.db);
    let tables: Vec<(String, bool, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                (SELECT string_agg(a.attname::text, ',' ORDER BY a.attnum) \
                   FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
                    AND a.attnum = ANY (i.indkey) \
                  WHERE i.indrelid = c.oid AND i.indisprimary) \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'public' AND c.relkind = 'r' \
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                          AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() >= 18, "{tables:?}");
    for (name, rls, forced, key) in &tables {
        assert!(
            *rls && *forced,
            "{name} must enable and force row-level security"
        );
        // The event store's key is its stream id, which begins with the tenant.
        if name != "events" {
            assert!(
                key.as_deref().unwrap_or_default().contains("tenant_id"),
                "{name}'s primary key must include tenant_id: {key:?}"
            );
        }
    }
    let (superuser, bypass, owned): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, \
                (SELECT count(*) FROM pg_tables WHERE tableowner = 'scrm_app') \
           FROM pg_roles WHERE rolname = 'scrm_app'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!superuser && !bypass && owned == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_sees_nothing_without_a_tenant_and_one_tenant_with_it() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let pool = pg(&db.db);
    let count_as_app = |tenant: Option<&'static str>| async move {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('role', 'scrm_app', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        if let Some(t) = tenant {
            sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
                .bind(t)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        // No tenant predicate on purpose: RLS alone must scope these.
        let n: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM rm_customer), \
                    (SELECT count(DISTINCT tenant_id) FROM rm_customer), \
                    (SELECT count(*) FROM events)",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(count_as_app(None).await, (0, 0, 0));
    let (customers, tenants, events) = count_as_app(Some("acme")).await;
    assert_eq!((customers, tenants), (300, 1));
    assert!(events > 0);
    // The app role cannot write read models or the log.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'scrm_app', true), set_config('app.tenant_id', 'acme', true)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let denied = sqlx::query("DELETE FROM rm_customer")
        .execute(&mut *tx)
        .await;
    assert!(denied.is_err(), "scrm_app must not write read models");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pooled_connection_serving_tenants_in_turn_never_mixes_them() {
    let db = seeded(TestDb::postgres().await, TWO_TENANTS).await;
    let url = match &db.backend {
        server::config::Backend::Postgres { url } => url.clone(),
        _ => unreachable!(),
    };
    let one = Database::Postgres(
        PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap(),
    );
    let now = chrono::Utc::now();
    for t in ["acme", "beta", "acme", "beta", "acme"] {
        let reads = Reads::new(&one, &tenant(t));
        let page = reads
            .customers(&Scope::Tenant, &CustomerFilter::default(), None, 100, now)
            .await
            .unwrap();
        assert_eq!(page.len(), 100);
        // The request ends: its read transaction goes back to the pool.
        drop(reads);
        let tenants: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM rm_customer WHERE customer_id = ANY($1)",
        )
        .bind(
            page.iter()
                .map(|c| c.customer_id.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(pg(&db.db))
        .await
        .unwrap();
        assert_eq!(tenants, vec![t.to_string()]);
        // Nothing of the request's settings stays on the connection.
        let (role, setting): (String, Option<String>) = sqlx::query_as(
            "SELECT current_user::text, nullif(current_setting('app.tenant_id', true), '')",
        )
        .fetch_one(pg(&one))
        .await
        .unwrap();
        assert_ne!(role, "scrm_app");
        assert_eq!(setting, None);
    }
}
