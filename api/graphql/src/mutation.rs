//! Root mutations. Each takes one input with an idempotency key (and, where it changes
//! one stream, an optional expected version) and returns a payload whose `userErrors`
//! carry every business-rule rejection.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, TagState};
use domain::group::GroupCommand;
use domain::staff::StaffCommand;
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::TagLibraryCommand;
use domain::values::{
    CampaignId, CouponId, ExternalUserId, GroupId, Money, OrderId, StaffId, StoreId, TagGroupId,
    TagId,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

use super::errors::ApiError;
use super::guard::{caller, RoleGuard, ANALYSTS, GUIDES, OPERATIONS};
use super::ids;
use super::query::{customer_scope, CustomerScope};
use super::types::{Customer, Job};
use super::user_error::{from_command, DomainCode, UserError, UserErrorCode};
use super::{reads, state, ApiState};
use crate::rate_limit::RateLimiter;
use engine::auth::Caller;
use engine::commands::{CommandError, CommandMeta, Outcome};
use engine::handover::KIND as KIND_HANDOVER;
use engine::handover::{HandoverJobInput, KindInput, StrategyInput};
use engine::idempotency::{self, Earlier};
use engine::jobs::KIND_REBUILD;

#[derive(Debug, Default)]
pub struct Mutation;

/// What a customer mutation did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct CustomerPayload {
    #[graphql(skip)]
    pub customer_id: Option<String>,
    /// The customer stream's version after the change.
    pub version: Option<i32>,
    /// The global position of the last event written: read models at or past it
    /// include the change.
    pub position: Option<String>,
    /// The coupon this request issued (issueCoupon).
    pub coupon_id: Option<String>,
    /// True when this answer is the replay of an earlier request with the same key.
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl CustomerPayload {
    /// The customer as the portrait shows it now (it may trail `position` briefly).
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        let Some(id) = &self.customer_id else {
            return Ok(None);
        };
        let caller = caller(ctx)?;
        Ok(reads(ctx)?
            .customer(&customer_scope(caller, CustomerScope::Store), id)
            .await
            .map_err(ApiError::from)?
            .or(reads(ctx)?
                .customer(&customer_scope(caller, CustomerScope::Mine), id)
                .await
                .map_err(ApiError::from)?)
            .map(Customer::new))
    }
}

/// What a tag library, group or staff mutation did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
pub struct ChangePayload {
    /// The id of what was created or changed.
    pub id: Option<String>,
    pub version: Option<i32>,
    pub position: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct JobPayload {
    #[graphql(skip)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl JobPayload {
    async fn job(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Job>> {
        let Some(id) = &self.job_id else {
            return Ok(None);
        };
        let job = reads(ctx)?.job(id).await.map_err(ApiError::from)?;
        Ok(super::subscription::visible(job, caller(ctx)?).map(Job))
    }
}

/// Payloads that can carry user errors and be replayed.
trait Payload: Default + Serialize + DeserializeOwned {
    fn rejected(error: UserError) -> Self;
    fn mark_replayed(&mut self);
}

macro_rules! payload {
    ($($t:ty),*) => {$(
        impl Payload for $t {
            fn rejected(error: UserError) -> Self {
                Self { user_errors: vec![error], ..Default::default() }
            }
            fn mark_replayed(&mut self) {
                self.replayed = true;
            }
        }
    )*};
}
payload!(CustomerPayload, ChangePayload, JobPayload);

fn position(outcome: &Outcome) -> Option<String> {
    outcome.position.map(|p| p.to_string())
}

fn version(outcome: &Outcome) -> Option<i32> {
    i32::try_from(outcome.version).ok()
}

/// A parsed id from the input, or the user error that says which field is wrong.
fn parse<T, E: std::fmt::Display>(field: &str, parsed: Result<T, E>) -> Result<T, UserError> {
    parsed.map_err(|e| {
        UserError::new(
            &["input", field],
            UserErrorCode::InvalidInput,
            e.to_string(),
        )
    })
}

fn expected(field: Option<i32>) -> Result<Option<usize>, UserError> {
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

/// Runs `work` once per idempotency key: a repeated key with the same input returns the
/// stored answer, with another input a user error.
async fn once<I, P, F, Fut>(
    ctx: &Context<'_>,
    operation: &str,
    key: &str,
    input: &I,
    work: F,
) -> async_graphql::Result<P>
where
    I: Serialize,
    P: Payload,
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<P, ApiError>>,
{
    let key = match Uuid::parse_str(key) {
        Ok(k) => k.hyphenated().to_string(),
        Err(_) => {
            return Ok(P::rejected(UserError::new(
                &["input", "idempotencyKey"],
                UserErrorCode::InvalidInput,
                "idempotencyKey must be a UUID",
            )))
        }
    };
    let caller = caller(ctx)?;
    let key = idempotency::scoped_key(&caller.principal(), &key);
    let db = &state(ctx)?.engine.db;
    let input = serde_json::to_value(input).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = idempotency::request_hash(operation, &input);
    match idempotency::lookup(db, &caller.tenant, &key, &hash)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    {
        Earlier::Same(stored) => {
            let mut payload: P =
                serde_json::from_str(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
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
    let payload = work(key.clone()).await?;
    let stored = serde_json::to_string(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    idempotency::record(db, &caller.tenant, &key, operation, &hash, &stored)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(payload)
}

fn meta(ctx: &Context<'_>, caller: &Caller, key: &str, expected: Option<usize>) -> CommandMeta {
    let request_id = ctx
        .data_opt::<super::RequestId>()
        .map_or_else(Uuid::new_v4, |r| r.0);
    let mut meta = CommandMeta::new(caller.tenant.clone(), caller.actor(), request_id)
        .with_idempotency_key(key);
    meta.expected_version = expected;
    meta
}

fn command_error<E: std::error::Error + DomainCode>(
    error: CommandError<E>,
    field: &str,
) -> Result<UserError, ApiError> {
    from_command(error, field).map_err(ApiError::Internal)
}

/// The customer behind `id`, if the caller serves them (or may otherwise see them).
async fn visible_customer(
    ctx: &Context<'_>,
    caller: &Caller,
    id: &ID,
) -> Result<Result<ExternalUserId, UserError>, ApiError> {
    let Ok(local) = ids::decode("Customer", id) else {
        return Ok(Err(UserError::not_found("customerId", "customer")));
    };
    let seen = reads(ctx)?
        .customer(&customer_scope(caller, CustomerScope::Mine), &local)
        .await?;
    Ok(match (seen, ExternalUserId::parse(local)) {
        (Some(_), Ok(id)) => Ok(id),
        _ => Err(UserError::not_found("customerId", "customer")),
    })
}

/// Waits briefly for the portrait to include a change, so the payload's `customer`
/// shows it; a slow projector only makes the answer staler, never wrong.
async fn fresh(state: &ApiState, outcome: &Outcome) {
    if outcome.position.is_some() {
        let waited = projections::projector::wait_for(
            &state.engine.db,
            projections::registry::PORTRAIT.name,
            <domain::customer::Customer as cqrs_es::Aggregate>::TYPE,
            &outcome.aggregate_id,
            i64::try_from(outcome.version).unwrap_or(i64::MAX),
            std::time::Duration::from_secs(2),
        )
        .await;
        if let Err(error) = waited {
            tracing::warn!(%error, "could not wait for the portrait");
        }
    }
}

/// Executes one customer command for a guide, with all the checks in one place.
async fn customer_command(
    ctx: &Context<'_>,
    customer: &ID,
    expected_version: Option<i32>,
    key: &str,
    field: &str,
    command: impl FnOnce(StaffId) -> Result<CustomerCommand, UserError>,
) -> Result<CustomerPayload, ApiError> {
    let caller = caller(ctx)?;
    let state: &ApiState = state(ctx)?;
    let rejected = |e| Ok(CustomerPayload::rejected(e));
    let Some(staff) = caller.staff() else {
        return Err(ApiError::Forbidden);
    };
    let id = match visible_customer(ctx, caller, customer).await? {
        Ok(id) => id,
        Err(e) => return rejected(e),
    };
    let expected = match expected(expected_version) {
        Ok(v) => v,
        Err(e) => return rejected(e),
    };
    let command = match command(staff) {
        Ok(c) => c,
        Err(e) => return rejected(e),
    };
    let at = state.clock.now();
    match state
        .engine
        .customers
        .execute(
            &stream_id(&caller.tenant, id.as_str()),
            Stamped::new(at, command),
            &meta(ctx, caller, key, expected),
        )
        .await
    {
        Ok(outcome) => {
            fresh(state, &outcome).await;
            Ok(CustomerPayload {
                customer_id: Some(id.to_string()),
                version: version(&outcome),
                position: position(&outcome),
                replayed: outcome.replayed,
                ..Default::default()
            })
        }
        Err(e) => rejected(command_error(e, field)?),
    }
}

// ---- inputs ------------------------------------------------------------------------

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

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct AddCustomerToGroupInput {
    pub customer_id: ID,
    /// WeCom `chat_id` of the customer group.
    pub group_id: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateTagGroupInput {
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateTagInput {
    pub group_id: String,
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct RenameTagInput {
    pub tag_id: String,
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct DeleteTagInput {
    pub tag_id: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateCustomerGroupInput {
    /// The staff member who will own the group.
    pub owner_staff_id: String,
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct MarkStaffDepartedInput {
    pub staff_id: String,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct StartRebuildInput {
    /// One projection by name (`customer_portrait`, `staff_departures`,
    /// `repurchase_funnel`); all when omitted.
    pub projection: Option<String>,
    pub idempotency_key: String,
}

/// How a handover spreads the customers over the successors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
pub enum HandoverStrategy {
    /// Everything to the one successor named.
    Single,
    /// Each customer to the successor with the lowest share of their customer limit in
    /// use, so successors end up about equally full; groups in turn.
    Balanced,
}

/// WeCom's two kinds of handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
pub enum HandoverKind {
    /// 离职继承: the staff member has left (at most a year ago).
    Resigned,
    /// 在职继承: the staff member stays; each customer at most twice in 90 days.
    OnJob,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct StartHandoverInput {
    /// The staff member (WeCom userid) whose customers and groups move.
    pub staff_id: String,
    /// Who takes them over. When omitted: every active member of staff of the same
    /// store.
    pub successor_ids: Option<Vec<String>>,
    #[graphql(default_with = "HandoverStrategy::Balanced")]
    pub strategy: HandoverStrategy,
    #[graphql(default_with = "HandoverKind::Resigned")]
    pub kind: HandoverKind,
    pub idempotency_key: String,
}

/// An id derived from the request's idempotency key, so a retried request names the
/// same new thing and its command hashes the same.
/// Charges a job-starting mutation to its tenant's small bucket for heavy work. Replays
/// of an idempotency key never get here, so they are free.
fn heavy(ctx: &Context<'_>, caller: &Caller) -> Result<(), ApiError> {
    match ctx.data_opt::<Arc<RateLimiter>>() {
        Some(limiter) => limiter
            .heavy
            .check(&caller.tenant.to_string(), 1.0, std::time::Instant::now())
            .map_err(ApiError::RateLimited),
        None => Ok(()),
    }
}

fn derived_id(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", key.replace('-', ""))
}

async fn tag_state(ctx: &Context<'_>, tag: &str) -> Result<TagState, ApiError> {
    Ok(match reads(ctx)?.tag_state(tag).await? {
        Some(true) => TagState::Active,
        Some(false) => TagState::Deleted,
        None => TagState::Unknown,
    })
}

/// Executes a tag-library command for operations.
async fn library_command(
    ctx: &Context<'_>,
    key: &str,
    field: &str,
    id: String,
    command: TagLibraryCommand,
) -> Result<ChangePayload, ApiError> {
    let caller = caller(ctx)?;
    let state = state(ctx)?;
    let at = state.clock.now();
    match state
        .engine
        .tags
        .execute(
            &stream_id(&caller.tenant, TAG_LIBRARY_LOCAL_ID),
            Stamped::new(at, command),
            &meta(ctx, caller, key, None),
        )
        .await
    {
        Ok(outcome) => Ok(ChangePayload {
            id: Some(id),
            version: version(&outcome),
            position: position(&outcome),
            replayed: outcome.replayed,
            ..Default::default()
        }),
        Err(e) => Ok(ChangePayload::rejected(command_error(e, field)?)),
    }
}

/// Checks a handover request against the staff involved and resolves its successors:
/// the job's input, or the user error that says what to correct.
async fn handover_input(
    ctx: &Context<'_>,
    caller: &Caller,
    state: &ApiState,
    input: &StartHandoverInput,
) -> Result<Result<HandoverJobInput, UserError>, ApiError> {
    let internal = |e: CommandError<domain::staff::StaffError>| ApiError::Internal(e.to_string());
    let staff = match parse("staffId", StaffId::parse(input.staff_id.as_str())) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let (leaver, _) = state
        .engine
        .staff
        .load(&stream_id(&caller.tenant, staff.as_str()))
        .await
        .map_err(internal)?;
    if !leaver.is_registered() {
        return Ok(Err(UserError::not_found("staffId", "member of staff")));
    }
    let kind = match input.kind {
        HandoverKind::Resigned => KindInput::Resigned,
        HandoverKind::OnJob => KindInput::OnJob,
    };
    // The domain's own rule, checked once for the leaver before any customer is.
    if let Err(refused) = domain::customer::check_handover_kind(
        kind.domain(),
        &staff,
        leaver.departed_at(),
        state.clock.now(),
    ) {
        return Ok(Err(from_command(
            CommandError::Rejected(refused),
            "staffId",
        )
        .map_err(ApiError::Internal)?));
    }
    let on_successors = |code, message: String| {
        Ok(Err(UserError::new(
            &["input", "successorIds"],
            code,
            message,
        )))
    };
    let mut successors: Vec<StaffId> = Vec::new();
    match &input.successor_ids {
        Some(ids) => {
            for raw in ids {
                let id = match parse("successorIds", StaffId::parse(raw.as_str())) {
                    Ok(id) => id,
                    Err(e) => return Ok(Err(e)),
                };
                if id == staff {
                    return on_successors(
                        UserErrorCode::SameStaff,
                        "the successor must differ from the staff member handing over".into(),
                    );
                }
                let (successor, _) = state
                    .engine
                    .staff
                    .load(&stream_id(&caller.tenant, id.as_str()))
                    .await
                    .map_err(internal)?;
                if !successor.is_registered() {
                    return Ok(Err(UserError::not_found("successorIds", "member of staff")));
                }
                if successor.departed_at().is_some() {
                    return on_successors(
                        UserErrorCode::StaffDeparted,
                        format!("successor {id} has left the company"),
                    );
                }
                if !successors.contains(&id) {
                    successors.push(id);
                }
            }
        }
        None => {
            let filter = engine::reads::StaffFilter {
                store: leaver.store().map(ToString::to_string),
                departed: Some(false),
            };
            successors = reads(ctx)?
                .staff_members(&filter, None, 100)
                .await?
                .into_iter()
                .filter_map(|s| StaffId::parse(s.staff_id).ok())
                .filter(|s| *s != staff)
                .collect();
        }
    }
    if successors.is_empty() {
        return on_successors(
            UserErrorCode::InvalidInput,
            "no successor: name successorIds (nobody else works at that store)".into(),
        );
    }
    if input.strategy == HandoverStrategy::Single && successors.len() != 1 {
        return on_successors(
            UserErrorCode::InvalidInput,
            format!(
                "SINGLE takes exactly one successor, not {}",
                successors.len()
            ),
        );
    }
    Ok(Ok(HandoverJobInput {
        from: staff.to_string(),
        successors: successors.iter().map(ToString::to_string).collect(),
        strategy: match input.strategy {
            HandoverStrategy::Single => StrategyInput::Single,
            HandoverStrategy::Balanced => StrategyInput::Balanced,
        },
        kind,
    }))
}

#[Object]
impl Mutation {
    /// Tags a customer you serve with a tag of the library.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn tag_customer(
        &self,
        ctx: &Context<'_>,
        input: TagCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(ctx, "tagCustomer", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let state = tag_state(ctx, &input.tag_id).await?;
                customer_command(
                    ctx,
                    &input.customer_id,
                    input.expected_version,
                    &key,
                    "tagId",
                    |staff| {
                        Ok(CustomerCommand::Tag {
                            staff,
                            tag: parse("tagId", TagId::parse(input.tag_id.as_str()))?,
                            tag_state: state,
                        })
                    },
                )
                .await
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn untag_customer(
        &self,
        ctx: &Context<'_>,
        input: UntagCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(
            ctx,
            "untagCustomer",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    customer_command(
                        ctx,
                        &input.customer_id,
                        input.expected_version,
                        &key,
                        "tagId",
                        |staff| {
                            Ok(CustomerCommand::Untag {
                                staff,
                                tag: parse("tagId", TagId::parse(input.tag_id.as_str()))?,
                            })
                        },
                    )
                    .await
                }
            },
        )
        .await
    }

    /// Sets your remark (and description) on a customer you serve.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn set_remark(
        &self,
        ctx: &Context<'_>,
        input: SetRemarkInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(ctx, "setRemark", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                customer_command(
                    ctx,
                    &input.customer_id,
                    input.expected_version,
                    &key,
                    "remark",
                    |staff| {
                        Ok(CustomerCommand::ChangeRemark {
                            staff,
                            remark: input.remark.clone(),
                            description: input.description.clone(),
                        })
                    },
                )
                .await
            }
        })
        .await
    }

    /// Issues a coupon of a campaign to a customer you serve.
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn issue_coupon(
        &self,
        ctx: &Context<'_>,
        input: IssueCouponInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(ctx, "issueCoupon", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let coupon = derived_id("cp-", &key);
                let mut payload = customer_command(
                    ctx,
                    &input.customer_id,
                    input.expected_version,
                    &key,
                    "campaignId",
                    |staff| {
                        Ok(CustomerCommand::IssueCoupon {
                            coupon: parse("couponId", CouponId::parse(coupon.as_str()))?,
                            campaign: parse(
                                "campaignId",
                                CampaignId::parse(input.campaign_id.as_str()),
                            )?,
                            value: parse("valueFen", Money::from_fen(i64::from(input.value_fen)))?,
                            expires_at: input.expires_at,
                            staff: Some(staff),
                        })
                    },
                )
                .await?;
                if payload.user_errors.is_empty() {
                    payload.coupon_id = Some(coupon);
                }
                Ok(payload)
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn redeem_coupon(
        &self,
        ctx: &Context<'_>,
        input: RedeemCouponInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(ctx, "redeemCoupon", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                customer_command(
                    ctx,
                    &input.customer_id,
                    input.expected_version,
                    &key,
                    "couponId",
                    |_| {
                        Ok(CustomerCommand::RedeemCoupon {
                            coupon: parse("couponId", CouponId::parse(input.coupon_id.as_str()))?,
                            order: input
                                .order_id
                                .as_deref()
                                .map(|o| parse("orderId", OrderId::parse(o)))
                                .transpose()?,
                        })
                    },
                )
                .await
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn record_purchase(
        &self,
        ctx: &Context<'_>,
        input: RecordPurchaseInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(
            ctx,
            "recordPurchase",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    customer_command(
                        ctx,
                        &input.customer_id,
                        input.expected_version,
                        &key,
                        "orderId",
                        |staff| {
                            Ok(CustomerCommand::RecordPurchase {
                                order: parse("orderId", OrderId::parse(input.order_id.as_str()))?,
                                amount: parse(
                                    "amountFen",
                                    Money::from_fen(i64::from(input.amount_fen)),
                                )?,
                                store: parse("storeId", StoreId::parse(input.store_id.as_str()))?,
                                staff: Some(staff),
                            })
                        },
                    )
                    .await
                }
            },
        )
        .await
    }

    /// Adds a customer you serve to a customer group (the group admits them first).
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn add_customer_to_group(
        &self,
        ctx: &Context<'_>,
        input: AddCustomerToGroupInput,
    ) -> async_graphql::Result<CustomerPayload> {
        once(
            ctx,
            "addCustomerToGroup",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    let caller = caller(ctx)?;
                    let state = state(ctx)?;
                    let customer = match visible_customer(ctx, caller, &input.customer_id).await? {
                        Ok(id) => id,
                        Err(e) => return Ok(CustomerPayload::rejected(e)),
                    };
                    let group = match parse("groupId", GroupId::parse(input.group_id.as_str())) {
                        Ok(g) => g,
                        Err(e) => return Ok(CustomerPayload::rejected(e)),
                    };
                    let meta = meta(ctx, caller, &key, None);
                    // Scene 1: invited directly by a member (WeCom's join_scene).
                    match state
                        .engine
                        .membership()
                        .join(
                            &caller.tenant,
                            &group,
                            &customer,
                            1,
                            state.clock.now(),
                            &meta,
                        )
                        .await
                    {
                        Ok(()) => Ok(CustomerPayload {
                            customer_id: Some(customer.to_string()),
                            ..Default::default()
                        }),
                        Err(engine::commands::MembershipError::Group(e)) => {
                            Ok(CustomerPayload::rejected(command_error(e, "groupId")?))
                        }
                        Err(engine::commands::MembershipError::Customer(e)) => {
                            Ok(CustomerPayload::rejected(command_error(e, "customerId")?))
                        }
                    }
                }
            },
        )
        .await
    }

    /// Adds a group to the tag library.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_tag_group(
        &self,
        ctx: &Context<'_>,
        input: CreateTagGroupInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(
            ctx,
            "createTagGroup",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    let id = derived_id("tg-", &key);
                    let group = match parse("name", TagGroupId::parse(id.as_str())) {
                        Ok(g) => g,
                        Err(e) => return Ok(ChangePayload::rejected(e)),
                    };
                    let command = TagLibraryCommand::CreateGroup {
                        group,
                        name: input.name.clone(),
                    };
                    library_command(ctx, &key, "name", id, command).await
                }
            },
        )
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        input: CreateTagInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(ctx, "createTag", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let id = derived_id("tag-", &key);
                let (tag, group) = match (
                    parse("name", TagId::parse(id.as_str())),
                    parse("groupId", TagGroupId::parse(input.group_id.as_str())),
                ) {
                    (Ok(t), Ok(g)) => (t, g),
                    (Err(e), _) | (_, Err(e)) => return Ok(ChangePayload::rejected(e)),
                };
                let command = TagLibraryCommand::CreateTag {
                    tag,
                    group,
                    name: input.name.clone(),
                };
                library_command(ctx, &key, "name", id, command).await
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn rename_tag(
        &self,
        ctx: &Context<'_>,
        input: RenameTagInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(ctx, "renameTag", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let tag = match parse("tagId", TagId::parse(input.tag_id.as_str())) {
                    Ok(t) => t,
                    Err(e) => return Ok(ChangePayload::rejected(e)),
                };
                let command = TagLibraryCommand::RenameTag {
                    tag,
                    name: input.name.clone(),
                };
                library_command(ctx, &key, "name", input.tag_id.clone(), command).await
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn delete_tag(
        &self,
        ctx: &Context<'_>,
        input: DeleteTagInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(ctx, "deleteTag", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let tag = match parse("tagId", TagId::parse(input.tag_id.as_str())) {
                    Ok(t) => t,
                    Err(e) => return Ok(ChangePayload::rejected(e)),
                };
                let command = TagLibraryCommand::DeleteTag { tag };
                library_command(ctx, &key, "tagId", input.tag_id.clone(), command).await
            }
        })
        .await
    }

    /// Creates a customer group owned by a member of staff.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_customer_group(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerGroupInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(
            ctx,
            "createCustomerGroup",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    let caller = caller(ctx)?;
                    let state = state(ctx)?;
                    let id = derived_id("wr", &key);
                    let (group, owner) = match (
                        parse("name", GroupId::parse(id.as_str())),
                        parse(
                            "ownerStaffId",
                            StaffId::parse(input.owner_staff_id.as_str()),
                        ),
                    ) {
                        (Ok(g), Ok(o)) => (g, o),
                        (Err(e), _) | (_, Err(e)) => return Ok(ChangePayload::rejected(e)),
                    };
                    if reads(ctx)?.staff_member(owner.as_str()).await?.is_none() {
                        return Ok(ChangePayload::rejected(UserError::not_found(
                            "ownerStaffId",
                            "member of staff",
                        )));
                    }
                    let capacity =
                        engine::tenants::group_capacity(&state.engine.db, &caller.tenant)
                            .await
                            .map_err(|e| ApiError::Internal(e.to_string()))?;
                    let command = GroupCommand::Create {
                        owner,
                        name: input.name.clone(),
                        capacity,
                    };
                    match state
                        .engine
                        .groups
                        .execute(
                            &stream_id(&caller.tenant, group.as_str()),
                            Stamped::new(state.clock.now(), command),
                            &meta(ctx, caller, &key, None),
                        )
                        .await
                    {
                        Ok(outcome) => Ok(ChangePayload {
                            id: Some(id),
                            version: version(&outcome),
                            position: position(&outcome),
                            replayed: outcome.replayed,
                            ..Default::default()
                        }),
                        Err(e) => Ok(ChangePayload::rejected(command_error(e, "name")?)),
                    }
                }
            },
        )
        .await
    }

    /// Marks a member of staff as departed: they appear in the reassignment view.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn mark_staff_departed(
        &self,
        ctx: &Context<'_>,
        input: MarkStaffDepartedInput,
    ) -> async_graphql::Result<ChangePayload> {
        once(
            ctx,
            "markStaffDeparted",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    let caller = caller(ctx)?;
                    let state = state(ctx)?;
                    let (staff, expected) = match (
                        parse("staffId", StaffId::parse(input.staff_id.as_str())),
                        expected(input.expected_version),
                    ) {
                        (Ok(s), Ok(v)) => (s, v),
                        (Err(e), _) | (_, Err(e)) => return Ok(ChangePayload::rejected(e)),
                    };
                    match state
                        .engine
                        .staff
                        .execute(
                            &stream_id(&caller.tenant, staff.as_str()),
                            Stamped::new(state.clock.now(), StaffCommand::MarkDeparted),
                            &meta(ctx, caller, &key, expected),
                        )
                        .await
                    {
                        Ok(outcome) => Ok(ChangePayload {
                            id: Some(staff.to_string()),
                            version: version(&outcome),
                            position: position(&outcome),
                            replayed: outcome.replayed,
                            ..Default::default()
                        }),
                        Err(e) => Ok(ChangePayload::rejected(command_error(e, "staffId")?)),
                    }
                }
            },
        )
        .await
    }

    /// Rebuilds projections from the whole log, as a job (blue/green: reads keep being
    /// served from the old tables until the swap).
    #[graphql(guard = "RoleGuard(ANALYSTS)")]
    async fn start_rebuild(
        &self,
        ctx: &Context<'_>,
        input: StartRebuildInput,
    ) -> async_graphql::Result<JobPayload> {
        once(ctx, "startRebuild", &input.idempotency_key, &input, |key| {
            let input = input.clone();
            async move {
                let caller = caller(ctx)?;
                let state = state(ctx)?;
                heavy(ctx, caller)?;
                if let Some(name) = &input.projection {
                    if projections::registry::find(name).is_none() {
                        return Ok(JobPayload::rejected(UserError::new(
                            &["input", "projection"],
                            UserErrorCode::NotFound,
                            format!("no projection named {name}"),
                        )));
                    }
                }
                let (job, created) = state
                    .jobs
                    .create(
                        &caller.tenant,
                        KIND_REBUILD,
                        &serde_json::json!({ "projection": input.projection }),
                        caller.actor().as_str(),
                        &key,
                        None,
                    )
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
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
        })
        .await
    }

    /// Hands over everything a member of staff holds, customers and customer groups,
    /// as one job (一键继承): customers in batches of 100 per successor, groups at most
    /// 300 a day (the rest wait for the next day, visible in the job). Customers the
    /// rules hold back are reported per customer in `job.handoverItems`. Starting again
    /// with the same key, or while a handover of the same staff member is unfinished,
    /// returns that job.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn start_handover(
        &self,
        ctx: &Context<'_>,
        input: StartHandoverInput,
    ) -> async_graphql::Result<JobPayload> {
        once(
            ctx,
            "startHandover",
            &input.idempotency_key,
            &input,
            |key| {
                let input = input.clone();
                async move {
                    let caller = caller(ctx)?;
                    let state = state(ctx)?;
                    heavy(ctx, caller)?;
                    let job_input = match handover_input(ctx, caller, state, &input).await? {
                        Ok(i) => i,
                        Err(e) => return Ok(JobPayload::rejected(e)),
                    };
                    let (job, created) = state
                        .jobs
                        .create(
                            &caller.tenant,
                            KIND_HANDOVER,
                            &serde_json::to_value(&job_input)
                                .map_err(|e| ApiError::Internal(e.to_string()))?,
                            caller.actor().as_str(),
                            &key,
                            Some(job_input.from.as_str()),
                        )
                        .await
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
            },
        )
        .await
    }
}
