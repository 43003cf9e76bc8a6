//! Connections bound to one tenant for their whole life (docs/adr/0014-tenant-bound-reads.md).
//!
//! A read used to open a transaction and set its role, tenant, timeout and read-only mode
//! with `SET LOCAL` before every request: five statements parsed and a GUC stack pushed and
//! popped per request, and a round trip before the first row. A guide's portrait is one
//! statement, so that set-up was most of PostgreSQL's work for it (BENCHMARKS.md, issue 19).
//! Here a tenant's reads go to a pool of its own whose connections take the `scrm_app` role
//! and the tenant once, at connect: a connection can never carry one tenant's setting into
//! another's request, because it never serves another tenant, and row-level security
//! still checks every row against that setting.
//!
//! Citus is left on the transaction path: with `citus.propagate_set_commands = 'local'`
//! only `SET LOCAL` reaches the workers, and a session setting would leave them without a
//! tenant (their RLS would hide every row).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use domain::values::TenantId;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// A tenant's connections close after this long unused, so a tenant that stopped reading
/// holds none.
const IDLE: Duration = Duration::from_secs(30);

/// The session a tenant-bound connection is opened with.
pub fn session_sql(tenant: &TenantId) -> String {
    format!(
        "SET ROLE scrm_app; SET app.tenant_id = '{}'; \
         SET default_transaction_read_only = on; SET statement_timeout = {}",
        super::literal(tenant),
        super::READ_DEADLINE_SECONDS * 1000
    )
}

/// The pool of `tenant`'s reads on the database behind `main`: made on first use, kept
/// for the life of the process (its connections come and go with use). `None` on Citus.
pub async fn tenant_pool(main: &PgPool, tenant: &TenantId) -> Result<Option<PgPool>, sqlx::Error> {
    type Pools = HashMap<(String, TenantId), PgPool>;
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    if projections::citus::is_citus(main).await? {
        return Ok(None);
    }
    let options = main.connect_options();
    let key = (
        format!(
            "{}:{}/{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default(),
            options.get_username()
        ),
        tenant.clone(),
    );
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = pools.get(&key).filter(|p| !p.is_closed()) {
        return Ok(Some(pool.clone()));
    }
    let session = session_sql(tenant);
    let pool = PgPoolOptions::new()
        .max_connections(main.options().get_max_connections())
        .min_connections(0)
        .idle_timeout(IDLE)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before each acquire: it is a round trip per request, and a read on a
        // connection that died fails with an error the caller sees as a 500 once, after
        // which the pool drops that connection.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            let session = session.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(&session)).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options.as_ref().clone());
    pools.insert(key, pool.clone());
    Ok(Some(pool))
}
