//! The GraphQL schema: queries for guides, operations and analysts, mutations with user
//! errors and idempotency keys, and the limits that keep one request cheap.
//!
//! # Layout
//! - `query`, `mutation/` (one file per context, merged into `Mutation`; all take the
//!   path in `mutation/run.rs`), `subscription`: the roots.
//! - `types/`: the objects they return, by context; `paging`: connections.
//! - `errors` (`ApiError`, `ApiResult`, `Refusal`), `user_error` (user error codes,
//!   checked against the domain's own lists), `ids`, `guard`.
//! - `input`, `scope`, `limits`, `in_flight`, `rate_limit`: the request walls.

mod channels;
mod errors;
pub mod gate;
mod guard;
pub mod ids;
pub mod in_flight;
mod input;
mod limits;
mod mutation;
mod paging;
pub(crate) mod query;
pub mod rate_limit;
mod subscription;
mod timeline;
mod types;
mod user_error;
mod wecom_directory;
mod wecom_inbox;
mod wecom_unassigned;

use std::sync::Arc;

use async_graphql::{Context, SDLExportOptions, Schema, SchemaBuilder};

pub use errors::{mask, ApiError, PUBLIC_CODES};
pub use input::{MAX_NESTING, MAX_QUERY_BYTES};
pub use limits::{rate_limited, RequestStats, MAX_ALIASES, MAX_ROOT_FIELDS};
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::{SocketSlots, Subscription, JOB_POLL, MAX_SUBSCRIPTIONS_PER_SOCKET};
pub use user_error::UserErrorCode;

use crate::in_flight::InFlight;
use engine::app::Engine;
use engine::clock::Clock;
use engine::jobs::Jobs;
use engine::reads::Reads;

pub type ScrmSchema = Schema<Query, Mutation, Subscription>;

pub const MAX_DEPTH: usize = 10;
/// Sized from the documents our clients send: a portrait with its tags, groups, coupons
/// and 20 timeline entries costs about 200; 50 customers with a handful of fields, 400.
pub const MAX_COMPLEXITY: usize = 2_000;
pub const MAX_DIRECTIVES: usize = 5;

/// What every resolver can reach.
#[allow(missing_debug_implementations)]
pub struct ApiState {
    pub engine: Arc<Engine>,
    pub clock: Clock,
    pub jobs: Jobs,
    /// Introspection for every authenticated caller (the demo's GraphiQL needs it);
    /// otherwise only admins get it.
    pub open_introspection: bool,
    pub in_flight: Arc<InFlight>,
    /// WeCom's server API (one token cache with the server's ticks), for the reads
    /// that ask WeCom directly.
    pub wecom: ::wecom::client::WecomApi,
}

/// Correlates a request's log lines, events and error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub uuid::Uuid);

/// The schema a socket's requests run on: behind a [`gate::Gate`] as its one extension.
pub fn build_schema(state: Arc<ApiState>) -> ScrmSchema {
    build(state).1
}

/// The gate HTTP requests pass, with the schema (no extensions) behind it, and the
/// schema a socket's requests run on, behind the same gate (see `gate`).
pub fn build(state: Arc<ApiState>) -> (Arc<gate::Gate>, ScrmSchema) {
    let gate = Arc::new(gate::Gate::new(
        limited(state.clone()).finish(),
        state.clone(),
    ));
    let socket = limited(state)
        .extension(gate::SocketGate(gate.clone()))
        .finish();
    (gate, socket)
}

fn limited(state: Arc<ApiState>) -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .data(state)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES)
        .limit_recursive_depth(32)
        .disable_suggestions()
}

/// The SDL as committed in `schema.graphql` (`scrm schema` prints it).
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .finish()
        .sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_enum_items())
}

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a ApiState, ApiError> {
    ctx.data::<Arc<ApiState>>()
        .map(|s| s.as_ref())
        .map_err(|_| ApiError::internal("no API state in context"))
}

/// The caller's tenant-scoped read access (present whenever a caller is).
fn reads<'a>(ctx: &'a Context<'_>) -> Result<&'a Reads, ApiError> {
    ctx.data_opt::<Reads>().ok_or(ApiError::Unauthenticated)
}
