//! The first import from WeCom (issue 16): the customers, groups and tags a chain's
//! guides already have, brought in as a job. And the inbox's retry (issue 21): notices
//! the engine could not apply, queued again once an operator fixed the cause.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use serde::{Deserialize, Serialize};
use wecom::inbox::Requeued;

use super::payload::{payload, JobPayload};
use super::run::{heavy, keyed, once, start_job};
use crate::errors::{ApiError, ApiResult};
use crate::guard::{caller, RoleGuard, OPERATIONS};
use crate::state;
use crate::user_error::{UserError, UserErrorCode};

#[derive(Debug, Default)]
pub struct WecomMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct StartWecomImportInput {
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct RetryWecomNoticesInput {
    /// The notices' `dedupKey`s, at most [`MAX_RETRIED`].
    pub dedup_keys: Vec<String>,
    pub idempotency_key: String,
}

keyed!(StartWecomImportInput, RetryWecomNoticesInput);

/// Keys one retry takes: a console page's worth, and a bound on the statements one
/// request runs.
const MAX_RETRIED: usize = 100;

/// What `retryWecomNotices` did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
pub struct RetryWecomNoticesPayload {
    /// The keys put back in the queue, in the order asked: the inbox processor applies
    /// them on its next round, and `wecomNotices` shows how that went.
    pub retried: Vec<String>,
    #[serde(default)]
    pub replayed: bool,
    /// One per key not retried, its field `["input", "dedupKeys", "<index>"]`:
    /// NOT_FOUND for a key the tenant has no notice under, CONFLICT for a notice
    /// already processed (never applied twice) or already pending.
    pub user_errors: Vec<UserError>,
}

payload!(RetryWecomNoticesPayload);

#[Object]
impl WecomMutation {
    /// Imports the tenant's tag library, customers (every guide's relations with their
    /// remarks and tags) and customer groups from WeCom, as a job: stamped with
    /// WeCom's own times, marked as imported (actor `integration:wecom-import`),
    /// resumable, and safe to run again (nothing is appended twice). Needs the
    /// tenant's WeCom API credentials. Starting again while an import is unfinished
    /// returns that job; `job.wecomImport` shows its progress.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn start_wecom_import(
        &self,
        ctx: &Context<'_>,
        input: StartWecomImportInput,
    ) -> ApiResult<JobPayload> {
        once(ctx, "startWecomImport", input, |_input, key| async move {
            heavy(ctx)?;
            let tenant = &caller(ctx)?.tenant;
            let config = wecom::inbox::config(&state(ctx)?.engine.db, tenant)
                .await
                .map_err(ApiError::internal)?;
            if config.and_then(|c| c.api).is_none() {
                return Err(UserError::new(
                    &["input"],
                    UserErrorCode::InvalidInput,
                    "configure the tenant's WeCom API credentials first \
                     (scrm wecom configure --corp-id, with the corp secret)",
                )
                .into());
            }
            let subject = Some(wecom::import::SUBJECT);
            start_job(
                ctx,
                &key,
                wecom::import::KIND,
                &serde_json::json!({}),
                subject,
            )
            .await
        })
        .await
    }

    /// Queues unhandled or failed WeCom notices of the tenant again, due at once, with
    /// their attempts started again from zero: after an operator configured what was
    /// missing or fixed what a rule refused. The inbox processor applies them on its
    /// next round, with what WeCom answers then (an earlier run's read of WeCom is
    /// kept, so steps it already applied are not applied twice). Keys that cannot be
    /// retried are reported one by one in `userErrors`; the others are still retried.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn retry_wecom_notices(
        &self,
        ctx: &Context<'_>,
        input: RetryWecomNoticesInput,
    ) -> ApiResult<RetryWecomNoticesPayload> {
        once(ctx, "retryWecomNotices", input, |input, _key| async move {
            if input.dedup_keys.is_empty() || input.dedup_keys.len() > MAX_RETRIED {
                return Err(UserError::new(
                    &["input", "dedupKeys"],
                    UserErrorCode::InvalidInput,
                    format!("give between 1 and {MAX_RETRIED} dedup keys"),
                )
                .into());
            }
            let tenant = &caller(ctx)?.tenant;
            let outcomes =
                wecom::inbox::retry_notices(&state(ctx)?.engine.db, tenant, &input.dedup_keys)
                    .await
                    .map_err(ApiError::internal)?;
            let mut payload = RetryWecomNoticesPayload::default();
            for (index, (key, outcome)) in input.dedup_keys.into_iter().zip(outcomes).enumerate() {
                let (code, message) = match outcome {
                    Requeued::Queued => {
                        payload.retried.push(key);
                        continue;
                    }
                    Requeued::Unknown => (UserErrorCode::NotFound, "no such notice"),
                    Requeued::Processed => (
                        UserErrorCode::Conflict,
                        "the notice was processed: it is not applied twice",
                    ),
                    Requeued::Pending => (
                        UserErrorCode::Conflict,
                        "the notice is already waiting to be processed",
                    ),
                };
                let index = index.to_string();
                payload.user_errors.push(UserError::new(
                    &["input", "dedupKeys", &index],
                    code,
                    format!("{key}: {message}"),
                ));
            }
            Ok(payload)
        })
        .await
    }
}
