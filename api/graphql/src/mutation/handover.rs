//! Handover (一键继承): everything a member of staff holds moves to successors, as a
//! job.

use async_graphql::{Context, Enum, InputObject, Object, ID};
use domain::staff::Staff;
use domain::stamp::stream_id;
use domain::values::{ExternalUserId, StaffId};
use engine::commands::CommandError;
use engine::handover::{HandoverJobInput, KindInput, StrategyInput, KIND as KIND_HANDOVER};
use serde::Serialize;

use super::payload::JobPayload;
use super::run::{heavy, keyed, once, parse, start_job};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::{caller, RoleGuard, OPERATIONS};
use crate::user_error::{refusal, UserError, UserErrorCode};
use crate::{ids, reads, state};

#[derive(Debug, Default)]
pub struct HandoverMutation;

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
    /// Only these customers (ids as `Customer.id`), and no groups: an on-job handover
    /// of a chosen few. Omitted: everything the staff member holds.
    pub customer_ids: Option<Vec<ID>>,
    pub idempotency_key: String,
}

keyed!(StartHandoverInput);

/// Customers one handover may name: a guide's whole book at most.
const MAX_CHOSEN_CUSTOMERS: usize = domain::rules::MAX_CUSTOMER_LIMIT as usize;

/// A member of staff of the caller's tenant, as their stream has it.
async fn load_staff(ctx: &Context<'_>, id: &StaffId) -> ApiResult<Staff> {
    let caller = caller(ctx)?;
    let (staff, _) = state(ctx)?
        .engine
        .staff
        .load(&stream_id(&caller.tenant, id.as_str()))
        .await
        .map_err(ApiError::internal)?;
    Ok(staff)
}

/// Checks a handover request against the staff involved and resolves its successors:
/// the job's input, or the refusal that says what to correct.
async fn handover_input(
    ctx: &Context<'_>,
    input: &StartHandoverInput,
) -> Result<HandoverJobInput, Refusal> {
    let staff = parse("staffId", StaffId::parse(input.staff_id.as_str()))?;
    let leaver = load_staff(ctx, &staff).await?;
    if !leaver.is_registered() {
        return Err(UserError::not_found("staffId", "member of staff").into());
    }
    let kind = match input.kind {
        HandoverKind::Resigned => KindInput::Resigned,
        HandoverKind::OnJob => KindInput::OnJob,
    };
    // The domain's own rule, checked once for the leaver before any customer is.
    let now = state(ctx)?.clock.now();
    if let Err(refused) =
        domain::customer::check_handover_kind(kind.domain(), &staff, leaver.departed_at(), now)
    {
        return Err(refusal(CommandError::Rejected(refused), "staffId"));
    }
    let on_successors =
        |code, message: String| UserError::new(&["input", "successorIds"], code, message).into();
    let mut successors: Vec<StaffId> = Vec::new();
    match &input.successor_ids {
        Some(ids) => {
            for raw in ids {
                let id = parse("successorIds", StaffId::parse(raw.as_str()))?;
                if id == staff {
                    return Err(on_successors(
                        UserErrorCode::SameStaff,
                        "the successor must differ from the staff member handing over".into(),
                    ));
                }
                let successor = load_staff(ctx, &id).await?;
                if !successor.is_registered() {
                    return Err(UserError::not_found("successorIds", "member of staff").into());
                }
                if successor.departed_at().is_some() {
                    return Err(on_successors(
                        UserErrorCode::StaffDeparted,
                        format!("successor {id} has left the company"),
                    ));
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
        return Err(on_successors(
            UserErrorCode::InvalidInput,
            "no successor: name successorIds (nobody else works at that store)".into(),
        ));
    }
    if input.strategy == HandoverStrategy::Single && successors.len() != 1 {
        return Err(on_successors(
            UserErrorCode::InvalidInput,
            format!(
                "SINGLE takes exactly one successor, not {}",
                successors.len()
            ),
        ));
    }
    let customers = match &input.customer_ids {
        None => None,
        Some(ids) if ids.is_empty() || ids.len() > MAX_CHOSEN_CUSTOMERS => {
            return Err(UserError::new(
                &["input", "customerIds"],
                UserErrorCode::InvalidInput,
                format!("name between 1 and {MAX_CHOSEN_CUSTOMERS} customers, or none for all"),
            )
            .into())
        }
        Some(ids) => Some(
            ids.iter()
                .map(|id| {
                    let local = ids::decode("Customer", id)
                        .map_err(|_| UserError::not_found("customerIds", "customer"))?;
                    parse("customerIds", ExternalUserId::parse(local)).map(|c| c.to_string())
                })
                .collect::<Result<Vec<_>, UserError>>()?,
        ),
    };
    Ok(HandoverJobInput {
        customers,
        from: staff.to_string(),
        successors: successors.iter().map(ToString::to_string).collect(),
        strategy: match input.strategy {
            HandoverStrategy::Single => StrategyInput::Single,
            HandoverStrategy::Balanced => StrategyInput::Balanced,
        },
        kind,
    })
}

#[Object]
impl HandoverMutation {
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
    ) -> ApiResult<JobPayload> {
        once(ctx, "startHandover", input, |input, key| async move {
            heavy(ctx)?;
            let job = handover_input(ctx, &input).await?;
            let from = Some(job.from.as_str());
            start_job(ctx, &key, KIND_HANDOVER, &serde_json::to_value(&job)?, from).await
        })
        .await
    }
}
