//! The `scrm` binary run as a person at a console runs it: its commands and errors, and
//! `scrm demo` from nothing to a working URL.
//!
//! One test binary for the crate (issue 15): `cargo test -p scrm-server --test scrm_cli`.

mod cli;
mod demo;
