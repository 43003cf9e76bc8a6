//! The API's read side: every query of a read model or of a customer's stream, scoped to
//! the caller's tenant twice. Each query carries an explicit `tenant_id` predicate, and on
//! PostgreSQL it runs in a transaction that has switched to the `scrm_app` role with
//! `app.tenant_id` set, so row-level security hides other tenants even from a query that
//! forgot its predicate (migrations/postgres/0003_api.sql).

mod analytics;
mod customers;
mod jobs;
mod sql;
mod staff;

use domain::values::{StaffId, StoreId, TenantId};

pub use analytics::{FunnelDimension, FunnelLine, ProjectionLine, RedemptionLine};
pub use customers::{
    CouponRecord, CustomerFilter, CustomerRecord, GroupRecord, RelationRecord, TagRecord,
    TimelineRecord,
};
pub use jobs::{JobRecord, JobStatus};
pub use sql::{Arg, Sql};
pub use staff::{
    DepartureRecord, HandoverRecord, LibraryTagRecord, StaffFilter, StaffRecord, TagGroupRecord,
};

use crate::db::Database;

/// Sets up a PostgreSQL read transaction: the unprivileged role, the tenant RLS checks
/// against, and a statement timeout. `set_config(.., true)` is transaction-local, so a
/// pooled connection never carries one request's tenant into the next.
pub const SCOPE_SQL: &str = "SELECT set_config('role', 'scrm_app', true), \
    set_config('app.tenant_id', $1, true), \
    set_config('statement_timeout', '5000', true)";

/// Which customers a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Customers this member of staff serves.
    Staff(StaffId),
    /// Customers served by any staff of these stores.
    Stores(Vec<StoreId>),
    /// The whole tenant.
    Tenant,
}

/// Why a read failed. Never shown to clients verbatim.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored event could not be read: {0}")]
    BadEvent(String),
}

/// Read access to one tenant.
#[derive(Debug, Clone)]
pub struct Reads {
    db: Database,
    tenant: TenantId,
}

/// Runs `$body` with `$conn` a connection scoped to `$reads`'s tenant: inside a
/// transaction as `scrm_app` on PostgreSQL, a pooled connection on SQLite. SQL written
/// with `$n` placeholders runs on both.
macro_rules! scoped {
    ($reads:expr, |$conn:ident| $body:expr) => {
        match &$reads.db {
            $crate::db::Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query($crate::reads::SCOPE_SQL)
                    .bind($reads.tenant.as_str())
                    .execute(&mut *tx)
                    .await?;
                let out = {
                    let $conn = &mut *tx;
                    $body
                };
                tx.commit().await?;
                out
            }
            $crate::db::Database::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let $conn = &mut *conn;
                $body
            }
        }
    };
}
pub(crate) use scoped;

impl Reads {
    pub fn new(db: &Database, tenant: &TenantId) -> Self {
        Self {
            db: db.clone(),
            tenant: tenant.clone(),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}
