//! The API as a client meets it: the real server over HTTP and WebSocket on real
//! PostgreSQL (and SQLite where a backend differs): access, limits, hardening, logs,
//! handovers, coupons, groups, departed staff, subscriptions, tenant isolation and a
//! grammar fuzzer.
//!
//! One test binary for the area (issue 15): a change relinks it once, not once per file.
//! Run it alone with `cargo test -p scrm-tests --test api`, one module with a filter:
//! `cargo test -p scrm-tests --test api -- graphql_fuzz:: --nocapture`.

mod access;
mod as_of;
mod audience;
mod backends;
mod campaigns;
mod connections;
mod console;
mod coupons;
mod departed;
mod erasure;
mod funnel_as_of;
mod graphql_fuzz;
mod groups;
mod handover;
mod hardening;
mod http;
mod isolation;
mod limits;
mod logs;
mod portrait_cache;
mod server;
mod subscriptions;
mod timeline;
mod wecom_handover;
