//! The one path every mutation takes: the idempotency key checked once per caller, the
//! input parsed into a command (or a user error naming the field), the command run on
//! its stream, and the outcome or refusal turned into the payload.

use std::future::Future;
use std::sync::Arc;

use async_graphql::Context;
use cqrs_es::Aggregate;
use domain::stamp::{stream_id, Stamped};
use engine::app::Engine;
use engine::auth::Caller;
use engine::commands::{CommandMeta, CommandService, Outcome};
use engine::idempotency::{self, Earlier};
use serde::Serialize;
use uuid::Uuid;

use super::payload::{JobPayload, Payload};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::caller;
use crate::rate_limit::RateLimiter;
use crate::user_error::{refusal, DomainCode, UserError, UserErrorCode};
use crate::{state, RequestId};

/// A mutation's input: it carries the idempotency key its answer is stored under.
pub(super) trait Keyed: Serialize {
    fn idempotency_key(&self) -> &str;
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl $crate::mutation::run::Keyed for $t {
            fn idempotency_key(&self) -> &str {
                &self.idempotency_key
            }
        }
    )*};
}
pub(super) use keyed;

/// Runs `work` once per idempotency key: a repeated key with the same input returns the
/// stored answer, with another input a user error. A refusal the client can correct is
/// the answer (and stored as one); any other ends the request.
pub(super) async fn once<I, P, F, Fut>(
    ctx: &Context<'_>,
    operation: &str,
    input: I,
    work: F,
) -> ApiResult<P>
where
    I: Keyed,
    P: Payload,
    F: FnOnce(I, String) -> Fut,
    Fut: Future<Output = Result<P, Refusal>>,
{
    let Ok(key) = Uuid::parse_str(input.idempotency_key()) else {
        return Ok(P::rejected(UserError::new(
            &["input", "idempotencyKey"],
            UserErrorCode::InvalidInput,
            "idempotencyKey must be a UUID",
        )));
    };
    let caller = caller(ctx)?;
    let key = idempotency::scoped_key(&caller.principal(), &key.hyphenated().to_string());
    let db = &state(ctx)?.engine.db;
    let hash = idempotency::request_hash(operation, &serde_json::to_value(&input)?);
    match idempotency::lookup(db, &caller.tenant, &key, &hash).await? {
        Earlier::Same(stored) => {
            let mut payload: P = serde_json::from_str(&stored)?;
            payload.mark_replayed();
            return Ok(payload);
        }
        Earlier::Different => {
            return Ok(P::rejected(UserError::new(
                &["input", "idempotencyKey"],
                UserErrorCode::IdempotencyKeyReused,
                "this idempotency key was used for a different request",
            )))
        }
        Earlier::None => {}
    }
    let payload = match work(input, key.clone()).await {
        Ok(payload) => payload,
        Err(Refusal::User(error)) => P::rejected(error),
        Err(Refusal::Api(error)) => return Err(error),
    };
    let stored = serde_json::to_string(&payload)?;
    idempotency::record(db, &caller.tenant, &key, operation, &hash, &stored).await?;
    Ok(payload)
}

/// A command of one aggregate, and where the engine keeps that aggregate's service.
pub(super) trait Command: Clone + Serialize + Send + Sync + Sized {
    type Aggregate: Aggregate<
        Command = Stamped<Self>,
        Services = (),
        Error = Self::Error,
        Event: domain::pii::Personal,
    >;
    type Error: std::error::Error + DomainCode;
    fn service(engine: &Engine) -> &CommandService<Self::Aggregate>;
}

macro_rules! command {
    ($($command:ty => $aggregate:ty, $field:ident;)*) => {$(
        impl Command for $command {
            type Aggregate = $aggregate;
            type Error = <$aggregate as Aggregate>::Error;
            fn service(engine: &Engine) -> &CommandService<$aggregate> {
                &engine.$field
            }
        }
    )*};
}
command! {
    domain::customer::CustomerCommand => domain::customer::Customer, customers;
    domain::group::GroupCommand => domain::group::CustomerGroup, groups;
    domain::staff::StaffCommand => domain::staff::Staff, staff;
    domain::tags::TagLibraryCommand => domain::tags::TagLibrary, tags;
}

/// Runs `command` on the stream `local_id` of the caller's tenant, now: its outcome, or
/// the refusal that points at the input `field`.
pub(super) async fn execute<C: Command>(
    ctx: &Context<'_>,
    key: &str,
    local_id: &str,
    command: C,
    expected: Option<usize>,
    field: &str,
) -> Result<Outcome, Refusal> {
    let caller = caller(ctx)?;
    let state = state(ctx)?;
    C::service(&state.engine)
        .execute(
            &stream_id(&caller.tenant, local_id),
            Stamped::new(state.clock.now(), command),
            &meta(ctx, caller, key, expected),
        )
        .await
        .map_err(|e| refusal(e, field))
}

pub(super) fn meta(
    ctx: &Context<'_>,
    caller: &Caller,
    key: &str,
    expected: Option<usize>,
) -> CommandMeta {
    let request_id = ctx
        .data_opt::<RequestId>()
        .map_or_else(Uuid::new_v4, |r| r.0);
    let mut meta = CommandMeta::new(caller.tenant.clone(), caller.actor(), request_id)
        .with_idempotency_key(key);
    meta.expected_version = expected;
    meta
}

/// A parsed id from the input, or the user error that says which field is wrong.
pub(super) fn parse<T, E: std::fmt::Display>(
    field: &str,
    parsed: Result<T, E>,
) -> Result<T, UserError> {
    parsed.map_err(|e| {
        UserError::new(
            &["input", field],
            UserErrorCode::InvalidInput,
            e.to_string(),
        )
    })
}

pub(super) fn expected(field: Option<i32>) -> Result<Option<usize>, UserError> {
    field
        .map(|v| {
            usize::try_from(v).map_err(|_| {
                UserError::new(
                    &["input", "expectedVersion"],
                    UserErrorCode::InvalidInput,
                    "expectedVersion must not be negative",
                )
            })
        })
        .transpose()
}

/// An id derived from the request's idempotency key, so a retried request names the
/// same new thing and its command hashes the same.
pub(super) fn derived_id(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", key.replace('-', ""))
}

/// Creates a job of `kind` for the caller's tenant and starts it, unless the key (or
/// `subject`, a job of which is unfinished) names one already there.
pub(super) async fn start_job(
    ctx: &Context<'_>,
    key: &str,
    kind: &str,
    input: &serde_json::Value,
    subject: Option<&str>,
) -> Result<JobPayload, Refusal> {
    let caller = caller(ctx)?;
    let state = state(ctx)?;
    let (job, created) = state
        .jobs
        .create(
            &caller.tenant,
            kind,
            input,
            caller.actor().as_str(),
            key,
            subject,
        )
        .await?;
    let job_id = job.job_id.clone();
    if created {
        state.jobs.spawn(caller.tenant.to_string(), job);
    }
    Ok(JobPayload {
        job_id: Some(job_id),
        replayed: !created,
        ..Default::default()
    })
}

/// Charges a job-starting mutation to its tenant's small bucket for heavy work. Replays
/// of an idempotency key never get here, so they are free.
pub(super) fn heavy(ctx: &Context<'_>) -> ApiResult<()> {
    let caller = caller(ctx)?;
    match ctx.data_opt::<Arc<RateLimiter>>() {
        Some(limiter) => limiter
            .heavy
            .check(&caller.tenant.to_string(), 1.0, std::time::Instant::now())
            .map_err(ApiError::RateLimited),
        None => Ok(()),
    }
}
