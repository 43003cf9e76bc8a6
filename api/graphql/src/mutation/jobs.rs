//! Jobs analysts start: rebuilding projections.

use async_graphql::{Context, InputObject, Object};
use engine::jobs::KIND_REBUILD;
use serde::Serialize;

use super::payload::JobPayload;
use super::run::{heavy, keyed, once, start_job};
use crate::errors::ApiResult;
use crate::guard::{RoleGuard, ANALYSTS};
use crate::user_error::{UserError, UserErrorCode};

#[derive(Debug, Default)]
pub struct JobMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct StartRebuildInput {
    /// One projection by name (`customer_portrait`, `staff_departures`,
    /// `repurchase_funnel`); all when omitted.
    pub projection: Option<String>,
    pub idempotency_key: String,
}

keyed!(StartRebuildInput);

#[Object]
impl JobMutation {
    /// Rebuilds the caller's tenant's rows of projections from the log, as a job: the
    /// tenant's rows are replaced in one transaction when the job ends, and until then
    /// reads are served from the current ones. Other tenants' rows are not touched (the
    /// whole deployment is rebuilt with `scrm rebuild --all`).
    #[graphql(guard = "RoleGuard(ANALYSTS)")]
    async fn start_rebuild(
        &self,
        ctx: &Context<'_>,
        input: StartRebuildInput,
    ) -> ApiResult<JobPayload> {
        once(ctx, "startRebuild", input, |input, key| async move {
            heavy(ctx)?;
            if let Some(name) = &input.projection {
                if projections::registry::find(name).is_none() {
                    return Err(UserError::new(
                        &["input", "projection"],
                        UserErrorCode::NotFound,
                        format!("no projection named {name}"),
                    )
                    .into());
                }
            }
            let job = serde_json::json!({ "projection": input.projection });
            start_job(ctx, &key, KIND_REBUILD, &job, None).await
        })
        .await
    }
}
