//! The tenant's own settings an admin changes.

use async_graphql::{Context, InputObject, Object};
use serde::Serialize;

use super::payload::ChangePayload;
use super::run::{keyed, once};
use crate::errors::ApiResult;
use crate::guard::{caller, RoleGuard, ADMINS};
use crate::state;
use crate::timeline::Language;

#[derive(Debug, Default)]
pub struct TenantMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct SetTenantLanguageInput {
    /// What the tenant's people read descriptions in (the timeline's summaries) when a
    /// request does not ask for a language.
    pub language: Language,
    pub idempotency_key: String,
}

keyed!(SetTenantLanguageInput);

#[Object]
impl TenantMutation {
    /// Sets the language the tenant's people read by default (Chinese until set); a
    /// request that names a language still reads that one.
    #[graphql(guard = "RoleGuard(ADMINS)")]
    async fn set_tenant_language(
        &self,
        ctx: &Context<'_>,
        input: SetTenantLanguageInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "setTenantLanguage", input, |input, _key| async move {
            let tenant = &caller(ctx)?.tenant;
            let engine = &state(ctx)?.engine;
            engine
                .locales
                .set(&engine.db, tenant, input.language.locale())
                .await?;
            Ok(ChangePayload {
                id: Some(tenant.to_string()),
                ..Default::default()
            })
        })
        .await
    }
}
