//! Erasing a customer's personal data under PIPL (个人信息保护法), by crypto-shredding
//! (docs/adr/0024-crypto-shredding.md).

use async_graphql::{Context, InputObject, Object, ID};
use serde::Serialize;

use super::customer::{fresh, visible_customer};
use super::payload::CustomerPayload;
use super::run::{keyed, meta, once};
use crate::errors::ApiResult;
use crate::guard::{caller, RoleGuard, ScopeGuard, ADMINS};
use crate::state;
use crate::user_error::refusal;
use engine::auth::SCOPE_PII;

#[derive(Debug, Default)]
pub struct ErasureMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct EraseCustomerInput {
    pub customer_id: ID,
    /// Why (kept in the log in the clear: say why, not who), e.g. "客户申请删除".
    pub reason: String,
    pub idempotency_key: String,
}
keyed!(EraseCustomerInput);

#[Object]
impl ErasureMutation {
    /// Erases what identifies a customer (name, phone, avatar, every remark), for good:
    /// their data key is destroyed, so their events keep their kinds and counts (the
    /// funnel does not change) but no one can read who they were, a rebuild included.
    /// Admins whose token carries the `pii` scope only.
    #[graphql(guard = "RoleGuard(ADMINS).and(ScopeGuard(SCOPE_PII))")]
    async fn erase_customer(
        &self,
        ctx: &Context<'_>,
        input: EraseCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "eraseCustomer", input, |input, key| async move {
            let caller = caller(ctx)?;
            let id = visible_customer(ctx, caller, &input.customer_id).await?;
            let state = state(ctx)?;
            let outcome = engine::pii::erase_customer(
                &state.engine,
                id.as_str(),
                input.reason.clone(),
                (state.clock.now(), &meta(ctx, caller, &key, None)),
            )
            .await
            .map_err(|e| refusal(e, "customerId"))?;
            fresh(state, &outcome).await;
            Ok(CustomerPayload::changed(id.to_string(), &outcome))
        })
        .await
    }
}
