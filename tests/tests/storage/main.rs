//! Storage: the event store, the projector and its read models, bulk seeding and a
//! handover job surviving its server being killed, on real PostgreSQL and SQLite.
//!
//! One test binary for the area (issue 15): a change relinks it once, not once per file.
//! Run it alone with `cargo test -p scrm-tests --test storage`, one module with a filter:
//! `cargo test -p scrm-tests --test storage -- projections::`.

mod citus;
mod handover_crash;
mod pii;
mod projections;
mod rebuild_crash;
mod seed;
mod store;
mod wecom_crash;
