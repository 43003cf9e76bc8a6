//! The API's read side: every query of a read model or of a customer's stream, scoped to
//! the caller's tenant twice. Each query carries an explicit `tenant_id` predicate, and on
//! PostgreSQL it runs as the `scrm_app` role with `app.tenant_id` set (on a connection
//! bound to the tenant, [`bound`]; on Citus in a transaction that set both), so row-level
//! security hides other tenants even from a query that forgot its predicate
//! (migrations/postgres/0003_api.sql).

mod analytics;
mod as_of;
pub mod bound;
pub mod cache;
mod channels;
mod customers;
mod jobs;
mod names;
mod portrait;
mod sql;
mod staff;
mod wecom;

use std::sync::Arc;

use domain::values::{StaffId, StoreId, TenantId};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, MutexGuard};

pub use analytics::{
    CampaignArmRecord, FunnelDimension, FunnelLine, ProjectionLine, RedemptionLine,
};
pub use channels::WelcomeRecord;
pub use customers::{
    CouponRecord, CustomerFilter, CustomerRecord, GroupRecord, RelationRecord, TagRecord,
    TimelineRecord,
};
pub use jobs::{HandoverItemRecord, JobRecord, JobStatus, JOB_COLUMNS};
pub use names::{mentions, DisplayNames, Mentioned};
pub use portrait::{PortraitParts, PortraitWants};
pub use sql::{Arg, Sql};
pub use staff::{
    DepartureRecord, HandoverRecord, LibraryTagRecord, StaffFilter, StaffRecord, TagGroupRecord,
};
pub use wecom::{DepartmentRecord, WecomImportRecord, WecomNoticeRecord};

use crate::db::Database;

/// Opens a PostgreSQL read transaction on Citus, where tenant-bound connections
/// ([`bound`]) cannot be used: the unprivileged role, the tenant RLS checks
/// against, and a statement timeout, sent as one simple-protocol message so the set-up
/// costs one round trip. `SET LOCAL` is transaction-local, so a pooled connection never
/// carries one request's tenant into the next. The tenant is written as a literal ([`literal`]).
/// `SET LOCAL`, not `set_config()`: on Citus only the former reaches the workers, and
/// row-level security there would otherwise hide every row without an error. PostgreSQL
/// without Citus takes `citus.*` as a placeholder setting and ignores it.
pub fn scope_sql(tenant: &TenantId) -> String {
    format!(
        "BEGIN READ ONLY; SET LOCAL citus.propagate_set_commands = 'local'; \
         SET LOCAL ROLE scrm_app; \
         SET LOCAL statement_timeout = {}; \
         SET LOCAL app.tenant_id = '{}'",
        READ_DEADLINE_SECONDS * 1000,
        literal(tenant)
    )
}

/// How long one read statement of a request may run on PostgreSQL before it is
/// cancelled and the request answered `TIMEOUT` (an analyst's funnel over a very large
/// tenant is the read that may meet it).
pub const READ_DEADLINE_SECONDS: u64 = 5;

/// `tenant` to be written into SQL as a string literal: safe because a `TenantId` holds
/// only ASCII letters, digits and '-' (checked again here).
pub(crate) fn literal(tenant: &TenantId) -> &str {
    assert!(
        tenant
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "tenant ids are slugs"
    );
    tenant.as_str()
}

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

/// Read access to one tenant for one request. On PostgreSQL every read of the request
/// shares one connection of the tenant's own pool ([`bound`]), taken at the first read
/// and given back when the last clone is dropped; on Citus, one scoped transaction.
#[derive(Clone)]
pub struct Reads {
    db: Database,
    tenant: TenantId,
    session: Arc<Mutex<Option<Session>>>,
    portraits: Option<Arc<cache::PortraitCache>>,
}

/// Where a request's PostgreSQL reads run.
#[allow(missing_debug_implementations)]
pub enum Session {
    /// A connection that took the role and the tenant when it was opened.
    Bound(PoolConnection<Postgres>),
    /// A transaction that set them with `SET LOCAL` ([`scope_sql`]): Citus.
    Scoped(Transaction<'static, Postgres>),
}

impl Session {
    pub fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Bound(conn) => conn,
            Self::Scoped(tx) => tx,
        }
    }
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$conn` a connection scoped to `$reads`'s tenant: the request's
/// read transaction as `scrm_app` on PostgreSQL, a pooled connection on SQLite. SQL
/// written with `$n` placeholders runs on both. Sibling resolvers take turns on the one
/// PostgreSQL connection.
macro_rules! scoped {
    ($reads:expr, |$conn:ident| $body:expr) => {
        match &$reads.db {
            $crate::db::Database::Postgres(pool) => {
                let mut session = $reads.session(pool).await?;
                let $conn: &mut sqlx::PgConnection =
                    session.as_mut().expect("session begun").conn();
                $body
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
            session: Arc::new(Mutex::new(None)),
            portraits: None,
        }
    }

    /// Today's portraits are served from `cache` while it is live (PostgreSQL).
    pub fn with_cache(mut self, cache: Arc<cache::PortraitCache>) -> Self {
        self.portraits = Some(cache);
        self
    }

    /// The request's read session, taken on first use.
    async fn session(&self, pool: &PgPool) -> Result<MutexGuard<'_, Option<Session>>, sqlx::Error> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            *session = Some(match bound::tenant_pool(pool, &self.tenant).await? {
                Some(tenant_pool) => Session::Bound(tenant_pool.acquire().await?),
                None => Session::Scoped(pool.begin_with(scope_sql(&self.tenant)).await?),
            });
        }
        Ok(session)
    }

    /// Gives the read session back if one is open; the next read takes another. A
    /// subscription reads in short sessions between long pauses.
    pub async fn release(&self) {
        self.session.lock().await.take();
    }

    fn is_postgres(&self) -> bool {
        matches!(self.db, Database::Postgres(_))
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Opens the sealed personal data of events of one of this tenant's customers (the
    /// keys are read on the engine's own connection: readers have no grant on them).
    pub async fn open_customer_events(
        &self,
        customer_id: &str,
        events: &mut [domain::customer::CustomerEvent],
    ) -> Result<(), ReadError> {
        let stream = format!("{}:{customer_id}", self.tenant);
        crate::pii::open_events(&self.db, &stream, events)
            .await
            .map_err(|e| ReadError::BadEvent(e.to_string()))
    }
}
