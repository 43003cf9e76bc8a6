//! The engine's write side in one value, built the same way by `main` and by tests.

use std::sync::Arc;

use domain::customer::Customer;
use domain::group::CustomerGroup;
use domain::staff::Staff;
use domain::tags::TagLibrary;
use tokio::sync::Notify;

use crate::commands::{CommandService, GroupMembership};
use crate::db::{Database, DbError};
use projections::{projector, rebuild, ProjectionError};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("projections: {0}")]
    Projection(#[from] ProjectionError),
    #[error("unsafe database roles: {0}")]
    UnsafeRole(String),
}

/// Refuses to serve when the role API reads run as could see across tenants: a
/// superuser, a role that bypasses row-level security, or one that owns tables.
pub async fn assert_app_role(db: &Database) -> Result<(), StartError> {
    let Database::Postgres(pool) = db else {
        return Ok(());
    };
    let row: Option<(bool, bool, i64)> = sqlx::query_as(
        "SELECT r.rolsuper, r.rolbypassrls, \
                (SELECT count(*) FROM pg_tables t WHERE t.tableowner = r.rolname) \
           FROM pg_roles r WHERE r.rolname = 'scrm_app'",
    )
    .fetch_optional(pool)
    .await
    .map_err(DbError::from)?;
    match row {
        None => Err(StartError::UnsafeRole("role scrm_app is missing".into())),
        Some((true, _, _)) => Err(StartError::UnsafeRole("scrm_app is a superuser".into())),
        Some((_, true, _)) => Err(StartError::UnsafeRole("scrm_app bypasses RLS".into())),
        Some((_, _, n)) if n > 0 => {
            Err(StartError::UnsafeRole(format!("scrm_app owns {n} tables")))
        }
        Some(_) => Ok(()),
    }
}

#[allow(missing_debug_implementations)]
pub struct Engine {
    pub db: Database,
    /// Signalled after every append this process makes: wakes the projector at once.
    pub wake: Arc<Notify>,
    pub customers: CommandService<Customer>,
    pub groups: CommandService<CustomerGroup>,
    pub staff: CommandService<Staff>,
    pub tags: CommandService<TagLibrary>,
    /// Today's portraits kept in memory; served only while a server listens for the
    /// projection's announcements (`hearing::listen`).
    pub portraits: Arc<crate::reads::cache::PortraitCache>,
    /// Tenants' timeline languages, read a moment ago.
    pub locales: crate::tenants::Locales,
    /// Staff known to be still here; trusted only while a server hears departures
    /// (`hearing::listen`).
    pub presence: Arc<crate::auth::presence::Presence>,
}

impl Engine {
    /// Migrates `db` to the schema this build knows, makes sure every projection has its
    /// tables (rebuilding any built by another code version), then wires the services.
    pub async fn start(db: Database) -> Result<Self, StartError> {
        db.migrate().await?;
        for stale in projector::prepare(&db).await? {
            tracing::info!(projection = stale.name, "code version changed: rebuilding");
            rebuild::rebuild(&db, stale, true).await?;
        }
        assert_app_role(&db).await?;
        Ok(Self::new(db))
    }

    /// Wires the command services without touching the schema.
    pub fn new(db: Database) -> Self {
        let wake = Arc::new(Notify::new());
        Self {
            customers: CommandService::new(&db).waking(wake.clone()),
            groups: CommandService::new(&db).waking(wake.clone()),
            staff: CommandService::new(&db).waking(wake.clone()),
            tags: CommandService::new(&db).waking(wake.clone()),
            portraits: Arc::new(crate::reads::cache::PortraitCache::new(
                crate::reads::cache::DEFAULT_BYTES,
            )),
            locales: Default::default(),
            presence: Default::default(),
            wake,
            db,
        }
    }

    pub fn membership(&self) -> GroupMembership<'_> {
        GroupMembership {
            groups: &self.groups,
            customers: &self.customers,
        }
    }
}
