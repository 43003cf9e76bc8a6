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
