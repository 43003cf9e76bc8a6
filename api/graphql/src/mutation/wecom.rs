//! The first import from WeCom (issue 16): the customers, groups and tags a chain's
//! guides already have, brought in as a job.

use async_graphql::{Context, InputObject, Object};
use serde::Serialize;

use super::payload::JobPayload;
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

keyed!(StartWecomImportInput);

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
}
