//! The corp's WeCom directory: which store a department is, and syncing the staff from
//! WeCom (docs/adr/0014-wecom-directory.md).

use async_graphql::{Context, InputObject, Object};
use domain::values::StoreId;
use serde::Serialize;
use wecom::directory::{map_department, KIND as KIND_DIRECTORY_SYNC};

use super::payload::{ChangePayload, JobPayload};
use super::run::{heavy, keyed, once, parse, start_job};
use crate::errors::{ApiError, ApiResult};
use crate::guard::{caller, RoleGuard, OPERATIONS};
use crate::state;

#[derive(Debug, Default)]
pub struct DirectoryMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct MapWecomDepartmentInput {
    /// WeCom's department id.
    pub department_id: i64,
    /// The store its staff work in.
    pub store_id: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct SyncWecomDirectoryInput {
    pub idempotency_key: String,
}

keyed!(MapWecomDepartmentInput, SyncWecomDirectoryInput);

#[Object]
impl DirectoryMutation {
    /// Says which store a WeCom department is. Its staff move there at the next
    /// directory sync or `change_contact` notice about them.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn map_wecom_department(
        &self,
        ctx: &Context<'_>,
        input: MapWecomDepartmentInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "mapWecomDepartment", input, |input, _key| async move {
            let store = parse("storeId", StoreId::parse(input.store_id.as_str()))?;
            let caller = caller(ctx)?;
            let state = state(ctx)?;
            map_department(
                &state.engine.db,
                &caller.tenant,
                input.department_id,
                &store,
                caller.actor().as_str(),
                state.clock.now(),
            )
            .await
            .map_err(ApiError::internal)?;
            Ok(ChangePayload {
                id: Some(input.department_id.to_string()),
                ..Default::default()
            })
        })
        .await
    }

    /// Reads the corp's departments and staff from WeCom and brings the engine's staff
    /// in line (registered, moved, departed), as a job. One runs at a time per tenant.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn sync_wecom_directory(
        &self,
        ctx: &Context<'_>,
        input: SyncWecomDirectoryInput,
    ) -> ApiResult<JobPayload> {
        once(ctx, "syncWecomDirectory", input, |_input, key| async move {
            heavy(ctx)?;
            let job = serde_json::json!({});
            start_job(ctx, &key, KIND_DIRECTORY_SYNC, &job, Some("directory")).await
        })
        .await
    }
}
