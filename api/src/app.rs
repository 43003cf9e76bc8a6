//! The engine's write side in one value, built the same way by `main` and by tests.

use domain::customer::Customer;
use domain::group::CustomerGroup;
use domain::staff::Staff;
use domain::tags::TagLibrary;

use crate::commands::{CommandService, GroupMembership};
use crate::db::{Database, DbError};

#[allow(missing_debug_implementations)]
pub struct Engine {
    pub db: Database,
    pub customers: CommandService<Customer>,
    pub groups: CommandService<CustomerGroup>,
    pub staff: CommandService<Staff>,
    pub tags: CommandService<TagLibrary>,
}

impl Engine {
    /// Migrates `db` to the schema this build knows, then wires the command services.
    pub async fn start(db: Database) -> Result<Self, DbError> {
        db.migrate().await?;
        Ok(Self::new(db))
    }

    /// Wires the command services without touching the schema.
    pub fn new(db: Database) -> Self {
        Self {
            customers: CommandService::new(&db),
            groups: CommandService::new(&db),
            staff: CommandService::new(&db),
            tags: CommandService::new(&db),
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
