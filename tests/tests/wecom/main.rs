//! WeCom's callbacks end to end: the callback endpoint over real HTTP, notices landing in
//! the inbox, the event log and the read models, and the API reads a thin notice needs,
//! answered by a stand-in for WeCom's server API; the directory sync and its store mapping.
//!
//! One test binary for the area (issue 15). Run it alone with
//! `cargo test -p scrm-tests --test wecom`.

mod callbacks;
mod campaign;
mod corp_handover;
mod directory;
mod import;
mod welcome;
mod write_back;
