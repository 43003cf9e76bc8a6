//! # scrm-api: the `scrm` binary and everything that wires the engine together
//!
//! Owns the storage wiring (which backend, migrations, the cqrs-es event stores), the
//! command service every write goes through, the command line, the GraphQL server, jobs
//! and the WeCom callback endpoint.
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
//! - [`auth`]: JWTs and API keys resolved into one `Caller` per request.
//! - [`reads`]: every API read, scoped to the caller's tenant (and RLS on PostgreSQL).
//! - [`graphql`]: the schema, its guards, limits, user errors and ids.
//! - [`http`]: `POST /graphql` with content negotiation, limits and masking.
//! - [`jobs`]: durable background jobs (projection rebuilds, handovers).
//! - [`handover`]: the one-click handover job and the 24-hour auto-accept.
//! - [`idempotency`]: tenant-wide idempotency keys for mutations.
//! - [`server`]: the HTTP server (GraphQL, GraphiQL, health, readiness, metrics)
//!   hosting the projector and the job runner.
//! - [`wecom`]: the WeCom callback endpoint, its inbox and the notices' commands.
//! - [`seed`]: `scrm seed`, the bulk loader of generated tenants.
//! - [`bench`]: `scrm bench`, benchmarks that print figures beside a ceiling.
//! - [`cli`]: the `scrm` subcommands.

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub use projections::db;
pub mod graphiql;
pub mod graphql;
pub mod handover;
pub mod http;
pub mod idempotency;
pub mod in_flight;
pub mod jobs;
pub mod lease;
pub mod metrics;
pub mod rate_limit;
pub mod reads;
pub mod seed;
pub mod server;
pub mod store;
pub mod tenants;
pub mod wecom;
pub mod ws;
