//! WeCom's callback crypto and notice parsing, without storage or a server: the
//! documented vectors, round trips, every payload, and properties on hostile input.
//!
//! One test binary for the crate (issue 15); named `wecom_parsing` so that it is not
//! confused with scrm-tests' `wecom` binary (the callback endpoint end to end). Run the
//! properties alone with `cargo test -p scrm-wecom --test wecom_parsing -- proptests::`.

mod common;
mod crypto_vectors;
mod notices;
mod proptests;
mod roundtrip;
