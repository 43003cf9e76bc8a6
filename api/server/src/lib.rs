//! # scrm-server: the `scrm` binary and the transports
//!
//! The composition root: it puts the engine, the WeCom integration and the GraphQL
//! schema together ([`serve::App`], used by `main` and by tests alike) and serves them
//! over HTTP and WebSocket. It also holds the command line and what only the command
//! line does (seed, demo, benchmarks). Nothing depends on it but `scrm-tests`.
//!
//! # Layout
//! - [`config`]: typed settings and the backend a `DATABASE_URL` selects.
//! - [`serve`]: the HTTP server (GraphQL, GraphiQL, health, readiness, metrics)
//!   hosting the projector and the job runner.
//! - [`http`], [`ws`]: `POST /graphql` and `/graphql/ws` with their limits and masking.
//! - [`callback`]: the WeCom callback endpoint.
//! - [`graphiql`], [`console`], [`metrics`]: the GraphiQL page, the operations console,
//!   the Prometheus text.
//! - [`cli`], [`demo`], [`token`]: the `scrm` subcommands, the demo, development tokens.
//! - [`seed`]: `scrm seed`, the bulk loader of generated tenants.
//! - [`bench`]: `scrm bench`, benchmarks that print figures beside a ceiling.

pub mod bench;
pub mod callback;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod demo;
pub mod graphiql;
pub mod http;
pub mod metrics;
pub mod seed;
pub mod serve;
pub mod token;
pub mod ws;
