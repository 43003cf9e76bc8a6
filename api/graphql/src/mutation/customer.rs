//! Mutations a guide makes on a customer they serve: tags, remarks, coupons, purchases.

use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, TagState};
use domain::values::{
    CampaignId, CouponId, ExternalUserId, Money, OrderId, StaffId, StoreId, TagId,
};
use serde::Serialize;

use super::payload::CustomerPayload;
use super::run::{execute, expected, keyed, meta, once, parse};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::{caller, RoleGuard, GUIDES};
use crate::ids;
use crate::user_error::{refusal, UserError};
use crate::{reads, state, ApiState};
use domain::stamp::{stream_id, Stamped};
use engine::auth::{customer_scope, Caller, Reach};
use engine::commands::{Batched, Outcome};

#[derive(Debug, Default)]
pub struct CustomerMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct TagCustomerInput {
    pub customer_id: ID,
    pub tag_id: String,
    /// A UUID; repeating it with the same input repeats the answer, not the work.
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct UntagCustomerInput {
    pub customer_id: ID,
    pub tag_id: String,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct SetRemarkInput {
    pub customer_id: ID,
    pub remark: String,
    #[graphql(default)]
    pub description: String,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct IssueCouponInput {
    pub customer_id: ID,
    pub campaign_id: String,
    /// Face value in fen (1/100 yuan).
    pub value_fen: i32,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct RedeemCouponInput {
    pub customer_id: ID,
    pub coupon_id: String,
    pub order_id: Option<String>,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct RecordPurchaseInput {
    pub customer_id: ID,
    pub order_id: String,
    /// Amount in fen (1/100 yuan).
    pub amount_fen: i32,
    pub store_id: String,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

/// An input that names a customer, and the version the caller expects them at.
trait Target {
    fn customer(&self) -> &ID;
    fn expected_version(&self) -> Option<i32>;
}

macro_rules! customer_inputs {
    ($($t:ty),*) => {
        keyed!($($t),*);
        $(
            impl Target for $t {
                fn customer(&self) -> &ID {
                    &self.customer_id
                }
                fn expected_version(&self) -> Option<i32> {
                    self.expected_version
                }
            }
        )*
    };
}
customer_inputs!(
    TagCustomerInput,
    UntagCustomerInput,
    SetRemarkInput,
    IssueCouponInput,
    RedeemCouponInput,
    RecordPurchaseInput
);

/// The customer behind `id`, if the caller serves them (or may otherwise see them).
pub(super) async fn visible_customer(
    ctx: &Context<'_>,
    caller: &Caller,
    id: &ID,
) -> Result<ExternalUserId, Refusal> {
    let not_found = || UserError::not_found("customerId", "customer").into();
    let Ok(local) = ids::decode("Customer", id) else {
        return Err(not_found());
    };
    let seen = reads(ctx)?
        .customer(&customer_scope(caller, Reach::Mine), &local)
        .await?;
    match (seen, ExternalUserId::parse(local)) {
        (Some(_), Ok(id)) => Ok(id),
        _ => Err(not_found()),
    }
}

/// Waits briefly for the portrait to include a change, so the payload's `customer`
/// shows it; a slow projector only makes the answer staler, never wrong.
pub(super) async fn fresh(state: &ApiState, outcome: &Outcome) {
    if outcome.position.is_some() {
        let waited = projections::projector::wait_for(
            &state.engine.db,
            projections::portrait::NAME,
            <domain::customer::Customer as cqrs_es::Aggregate>::TYPE,
            &outcome.aggregate_id,
            i64::try_from(outcome.version).unwrap_or(i64::MAX),
            std::time::Duration::from_secs(2),
        )
        .await;
        match waited {
            // Read your writes: the cache may not have heard the announcement yet.
            Ok(true) => {
                if let Some((tenant, customer)) = outcome.aggregate_id.split_once(':') {
                    state.engine.portraits.forget_customer(tenant, customer);
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not wait for the portrait"),
        }
    }
}

/// Executes one customer command for a guide on the customer `input` names (at the
/// version it expects), with all the checks in one place; a rejection points at the
/// input `field`.
async fn on_customer(
    ctx: &Context<'_>,
    key: &str,
    input: &impl Target,
    field: &str,
    command: impl FnOnce(StaffId) -> Result<CustomerCommand, UserError>,
) -> Result<CustomerPayload, Refusal> {
    let caller = caller(ctx)?;
    let Some(staff) = caller.staff() else {
        return Err(ApiError::Forbidden.into());
    };
    let id = visible_customer(ctx, caller, input.customer()).await?;
    let expected = expected(input.expected_version())?;
    let command = command(staff)?;
    let outcome = match written_back(ctx, caller, id.as_str(), &command, key).await? {
        Some(call) => {
            let state = state(ctx)?;
            let calls = |_: &[&Batched<CustomerCommand>]| vec![call.clone()];
            state
                .engine
                .customers
                .execute_calling(
                    &stream_id(&caller.tenant, id.as_str()),
                    Stamped::new(state.clock.now(), command),
                    &meta(ctx, caller, key, expected),
                    &calls,
                )
                .await
                .map_err(|e| refusal(e, field))?
        }
        None => execute(ctx, key, id.as_str(), command, expected, field).await?,
    };
    fresh(state(ctx)?, &outcome).await;
    Ok(CustomerPayload::changed(id.to_string(), &outcome))
}

/// The WeCom call a guide's edit asks for, when the tenant acts in WeCom: the edit and
/// its call are then written together (docs/adr/0013-wecom-outbox.md).
async fn written_back(
    ctx: &Context<'_>,
    caller: &Caller,
    customer: &str,
    command: &CustomerCommand,
    key: &str,
) -> Result<Option<engine::outbox::Call>, Refusal> {
    let Some(call) = engine::wecom_writes::call_for(&caller.tenant, customer, command, key) else {
        return Ok(None);
    };
    let db = &state(ctx)?.engine.db;
    let acts = engine::outbox::enabled(db, &caller.tenant)
        .await
        .map_err(ApiError::internal)?;
    Ok(acts.then_some(call))
}

async fn tag_state(ctx: &Context<'_>, tag: &str) -> ApiResult<TagState> {
    Ok(match reads(ctx)?.tag_state(tag).await? {
        Some(true) => TagState::Active,
        Some(false) => TagState::Deleted,
        None => TagState::Unknown,
    })
}

#[Object]
impl CustomerMutation {
    /// Tags a customer you serve with a tag of the library.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn tag_customer(
        &self,
        ctx: &Context<'_>,
        input: TagCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "tagCustomer", input, |input, key| async move {
            let tag_state = tag_state(ctx, &input.tag_id).await?;
            on_customer(ctx, &key, &input, "tagId", |staff| {
                let tag = parse("tagId", TagId::parse(input.tag_id.as_str()))?;
                Ok(CustomerCommand::Tag {
                    staff,
                    tag,
                    tag_state,
                })
            })
            .await
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn untag_customer(
        &self,
        ctx: &Context<'_>,
        input: UntagCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "untagCustomer", input, |input, key| async move {
            on_customer(ctx, &key, &input, "tagId", |staff| {
                let tag = parse("tagId", TagId::parse(input.tag_id.as_str()))?;
                Ok(CustomerCommand::Untag { staff, tag })
            })
            .await
        })
        .await
    }

    /// Sets your remark (and description) on a customer you serve.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn set_remark(
        &self,
        ctx: &Context<'_>,
        input: SetRemarkInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "setRemark", input, |input, key| async move {
            on_customer(ctx, &key, &input, "remark", |staff| {
                Ok(CustomerCommand::ChangeRemark {
                    staff,
                    remark: input.remark.clone(),
                    description: input.description.clone(),
                })
            })
            .await
        })
        .await
    }

    /// Issues a coupon of a campaign to a customer you serve.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn issue_coupon(
        &self,
        ctx: &Context<'_>,
        input: IssueCouponInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "issueCoupon", input, |input, key| async move {
            let coupon = super::run::derived_id("cp-", &key);
            let mut payload = on_customer(ctx, &key, &input, "campaignId", |staff| {
                Ok(CustomerCommand::IssueCoupon {
                    coupon: parse("couponId", CouponId::parse(coupon.as_str()))?,
                    campaign: parse("campaignId", CampaignId::parse(input.campaign_id.as_str()))?,
                    value: parse("valueFen", Money::from_fen(i64::from(input.value_fen)))?,
                    expires_at: input.expires_at,
                    staff: Some(staff),
                })
            })
            .await?;
            payload.coupon_id = Some(coupon);
            Ok(payload)
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn redeem_coupon(
        &self,
        ctx: &Context<'_>,
        input: RedeemCouponInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "redeemCoupon", input, |input, key| async move {
            on_customer(ctx, &key, &input, "couponId", |_| {
                let order = input.order_id.as_deref().map(OrderId::parse).transpose();
                Ok(CustomerCommand::RedeemCoupon {
                    coupon: parse("couponId", CouponId::parse(input.coupon_id.as_str()))?,
                    order: parse("orderId", order)?,
                })
            })
            .await
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn record_purchase(
        &self,
        ctx: &Context<'_>,
        input: RecordPurchaseInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "recordPurchase", input, |input, key| async move {
            on_customer(ctx, &key, &input, "orderId", |staff| {
                Ok(CustomerCommand::RecordPurchase {
                    order: parse("orderId", OrderId::parse(input.order_id.as_str()))?,
                    amount: parse("amountFen", Money::from_fen(i64::from(input.amount_fen)))?,
                    store: parse("storeId", StoreId::parse(input.store_id.as_str()))?,
                    staff: Some(staff),
                })
            })
            .await
        })
        .await
    }
}
