//! The world the API suites test on: tiny generated tenants (stores, staff, the
//! customers they serve, groups, tags) on fresh storage with the read models caught up,
//! a server on it when a suite talks HTTP, and the lookups that pick whom to act as.

use engine::db::Database;
use projections::on_pool;

use crate::live::TestApi;
use crate::TestDb;

/// `acme` generated from fixture seed 1.
pub const ONE_TENANT: &[(&str, u64)] = &[("acme", 1)];

/// `acme` from fixture seed 1 and `beta` from seed 2: two tenants to keep apart.
pub const TWO_TENANTS: &[(&str, u64)] = &[("acme", 1), ("beta", 2)];

/// `db` migrated, a tiny generated tenant for each `(tenant, fixture seed)`, and every
/// read model caught up.
pub async fn seeded(db: TestDb, tenants: &[(&str, u64)]) -> TestDb {
    db.seed_tiny(tenants).await;
    // Starting the engine creates the read models' tables.
    let engine = db.engine().await;
    projections::projector::catch_up(&engine.db)
        .await
        .expect("catch up");
    db
}

/// The seeded world with a server on it (default settings).
pub async fn served(db: TestDb, tenants: &[(&str, u64)]) -> (TestDb, TestApi) {
    let db = seeded(db, tenants).await;
    let api = TestApi::start(&db).await;
    (db, api)
}

/// The guides of tenant `t` who have not left and serve customers, with their store:
/// the busiest first, ties by staff id.
pub async fn busiest_guides(db: &Database, t: &str) -> Vec<(String, String)> {
    on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.staff_id, s.store_id FROM rm_customer_staff r \
             JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
             WHERE r.tenant_id = $1 AND s.departed_at IS NULL \
             GROUP BY r.staff_id, s.store_id ORDER BY count(*) DESC, r.staff_id",
        )
        .bind(t)
        .fetch_all(pool)
        .await
    })
    .expect("guides")
}

/// The first customer of tenant `t`, by id, whom `guide` alone serves (so a handover
/// leaves no other relation behind).
pub async fn sole_customer(db: &Database, t: &str, guide: &str) -> Option<String> {
    let only: Vec<(String, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, min(staff_id) FROM rm_customer_staff WHERE tenant_id = $1 \
             GROUP BY customer_id HAVING count(*) = 1 ORDER BY customer_id",
        )
        .bind(t)
        .fetch_all(pool)
        .await
    })
    .expect("customers served by one guide");
    only.into_iter()
        .find(|(_, s)| s == guide)
        .map(|(customer, _)| customer)
}
