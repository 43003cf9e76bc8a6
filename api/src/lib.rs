//! # scrm-api: the `scrm` binary and everything that wires the engine together
//!
//! Owns the storage wiring (which backend, migrations, the cqrs-es event stores), the
//! command service every write goes through, and the command line. Later: the GraphQL
//! server, jobs and the WeCom callback endpoint.
//!
//! May depend on every other crate of the workspace; nothing depends on it but
//! `scrm-tests`. Business rules do not live here: they are in `scrm-domain`.
//!
//! # Layout
//! - [`config`]: typed settings and the backend a `DATABASE_URL` selects.
//! - [`db`]: connecting and migrating (one migrations folder per backend).
//! - [`store`]: cqrs-es event stores on postgres-es / sqlite-es, global positions.
//! - [`commands`]: the command service (retry, idempotency, versions) and the
//!   two-stream group membership flow.
//! - [`app`]: one value holding a command service per aggregate, used by `main` and tests.
//! - [`server`]: the HTTP server (health, readiness, metrics) hosting the projector.
//! - [`seed`]: `scrm seed`, the bulk loader of generated tenants.
//! - [`bench`]: `scrm bench`, benchmarks that print figures beside a ceiling.
//! - [`cli`]: the `scrm` subcommands.

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub use projections::db;
pub mod seed;
pub mod server;
pub mod store;
