//! # scrm-projections: the read side
//!
//! Will own the read models (customer portrait, staff-departure reassignment view,
//! repurchase funnel), the durable catch-up projector that feeds them from the global
//! event order, and their rebuild. Knows the domain's event types and SQL.
//!
//! Must not depend on the API layer (no axum, no async-graphql) nor on `scrm-api`:
//! the API reads these tables, never the other way round.
