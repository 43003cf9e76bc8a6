//! # scrm-engine: the application layer
//!
//! Everything a request, a WeCom notice or a job does between its transport and the
//! domain: the event stores, the command service every write goes through, tenants and
//! who may do what, the reads behind every query, durable jobs and the handover.
//!
//! Knows no transport: no HTTP, no GraphQL, no WeCom (CI checks that it depends on
//! none of axum, async-graphql or the WeCom crate). Those crates depend on it, never the
//! other way; work they add to the job runner is registered with [`jobs::Jobs`]
//! ([`jobs::JobKind`], [`jobs::Periodic`]) where the server is put together.
//!
//! # Layout
//! - [`db`]: connecting and migrating (one migrations folder per backend).
//! - [`store`]: cqrs-es event stores on postgres-es / sqlite-es, global positions.
//! - [`commands`]: the command service (retry, idempotency, versions) and the
//!   two-stream group membership flow.
//! - [`app`]: one value holding a command service per aggregate.
//! - [`auth`]: JWTs and API keys resolved into one `Caller`, and what each role may see.
//! - [`tenants`]: registered tenants and their settings.
//! - [`reads`]: every API read, scoped to the caller's tenant (and RLS on PostgreSQL).
//! - [`jobs`]: durable background jobs; [`handover`]: the one-click handover job.
//! - [`sweep`]: commands the clock makes due (auto-accepts, [`coupons`] expiring).
//! - [`idempotency`], [`lease`], [`clock`]: keys for mutations, work one server does at
//!   a time, the injectable time.

pub mod app;
pub mod auth;
pub mod campaign;
pub mod channel_codes;
pub mod clock;
pub mod commands;
pub mod coupons;
pub use projections::db;
pub mod handover;
pub mod hearing;
pub mod idempotency;
pub mod jobs;
pub mod lease;
pub mod outbox;
pub mod pii;
pub mod reads;
pub mod store;
pub mod sweep;
pub mod tenants;
pub mod wecom_writes;
pub mod welcome;
