//! # scrm-domain: the ubiquitous language of the SCRM engine
//!
//! Owns the aggregates, their commands and events, and every business rule with a
//! number in it (see [`rules`]). Each rule is a pure function from state, command and
//! instant to events or a business error, tested given/when/then.
//!
//! Must not depend on anything that does I/O: no sqlx, no axum, no async-graphql, no
//! clock and no random ids. Time, ids and the acting user come in from the edge
//! ([`stamp::Stamped`]); facts that live in another aggregate are looked up by the
//! caller and passed in the command. CI checks the dependency rule with `cargo tree`.
//!
//! # Layout
//! - [`customer`]: one stream per tenant + `external_userid`: relations, tags, coupons,
//!   groups, purchases, deliveries, handovers.
//! - [`group`]: a customer group's owner, members and capacity.
//! - [`staff`]: a member of staff, their limit, departure and daily group transfers.
//! - [`tags`]: the tenant's tag library.
//! - [`campaign_plan`]: who is sent a mass message or Moment, by which guide, who is
//!   held out and who is skipped, and why.
//! - [`handover_plan`]: who takes which customer and group in a one-click handover,
//!   in WeCom-sized batches and days.
//! - [`values`]: value objects, built only through `parse`.
//! - [`stamp`]: the command envelope, stream ids and tenant-local days.
//! - [`rules`]: every number the business depends on.
//! - [`metadata`]: tenant, actor, request and instant stored with every event.
//! - [`pii`]: which fields of an event identify a person (sealed at the edge).

#[macro_use]
mod codes;

pub mod campaign_plan;
pub mod customer;
pub mod decide;
pub mod group;
pub mod handover_plan;
pub mod metadata;
pub mod pii;
pub mod rules;
pub mod staff;
pub mod stamp;
pub mod tags;
pub mod values;

pub use decide::Decide;
pub use stamp::{local_day, stream_id, tenant_of, Stamped};
