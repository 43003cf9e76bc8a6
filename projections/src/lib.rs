//! # scrm-projections: storage wiring and the read side
//!
//! Owns the connection to either backend and its migrations ([`db`]), the global-order
//! reader ([`log`]), the read models, the durable catch-up [`projector`] that feeds them
//! and their blue/green [`rebuild`]. Knows the domain's event types and SQL.
//!
//! Must not depend on the API layer (no axum, no async-graphql) nor on `scrm-api`: the
//! API reads these tables, never the other way round.
//!
//! # Layout
//! - [`db`]: backends, connecting, migrations.
//! - [`citus`]: the log's per-worker order when it is distributed.
//! - [`log`]: reading the log in global order.
//! - [`model`]: what a read model is, and its generic load/replace.
//! - [`registry`]: every projection, its tables and version.
//! - [`portrait`]: the customer portrait (fold and rows).
//! - [`departures`]: the staff-departure reassignment view.
//! - [`funnel`]: the repurchase funnel and coupon redemption by campaign.
//! - [`projector`]: incremental, checkpointed, woken by NOTIFY.
//! - [`rebuild`]: fold everything, COPY into fresh tables, swap.
//! - [`failures`]: the dead letter of a projection that cannot go on.
//! - [`pii`]: customer data keys: sealing, opening, erasure (crypto-shredding).
//! - [`tally`]: each tenant's own progress in each projection.
//! - `table`, `sql`: table descriptions and per-backend SQL.

pub mod announce;
pub mod campaigns;
pub mod citus;
pub mod db;
pub mod departures;
mod error;
pub mod failures;
pub mod funnel;
pub mod log;
pub mod model;
pub mod pii;
pub mod portrait;
pub mod projector;
pub mod rebuild;
pub mod registry;
mod sql;
pub mod table;
pub mod tally;

pub use error::ProjectionError;
