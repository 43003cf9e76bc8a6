//! Staff: a member's customer limit, marking them departed.

use async_graphql::{Context, InputObject, Object};
use domain::staff::StaffCommand;
use domain::values::StaffId;
use serde::Serialize;

use super::payload::ChangePayload;
use super::run::{execute, expected, keyed, once, parse};
use crate::errors::ApiResult;
use crate::guard::{RoleGuard, OPERATIONS};
use crate::state;

#[derive(Debug, Default)]
pub struct StaffMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct MarkStaffDepartedInput {
    pub staff_id: String,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct SetCustomerLimitInput {
    pub staff_id: String,
    /// How many customers they may have as friends (WeCom allows up to 20,000).
    pub limit: i32,
    pub idempotency_key: String,
    pub expected_version: Option<i32>,
}

keyed!(MarkStaffDepartedInput, SetCustomerLimitInput);

#[Object]
impl StaffMutation {
    /// Marks a member of staff as departed: they appear in the reassignment view.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn mark_staff_departed(
        &self,
        ctx: &Context<'_>,
        input: MarkStaffDepartedInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "markStaffDeparted", input, |input, key| async move {
            let staff = parse("staffId", StaffId::parse(input.staff_id.as_str()));
            let expected = expected(input.expected_version);
            let (staff, expected) = (staff?, expected?);
            let command = StaffCommand::MarkDeparted;
            let outcome = execute(ctx, &key, staff.as_str(), command, expected, "staffId").await?;
            // Their next request, on this server, is refused without waiting for the
            // departure's notice (other servers hear it from the log's trigger).
            state(ctx)?.engine.presence.forget(&outcome.aggregate_id);
            Ok(ChangePayload::changed(staff.to_string(), &outcome))
        })
        .await
    }

    /// Sets how many customers a member of staff may have: successors at their limit
    /// take no more customers in a handover.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn set_customer_limit(
        &self,
        ctx: &Context<'_>,
        input: SetCustomerLimitInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "setCustomerLimit", input, |input, key| async move {
            let staff = parse("staffId", StaffId::parse(input.staff_id.as_str()));
            let expected = expected(input.expected_version);
            let (staff, expected) = (staff?, expected?);
            // A negative limit is out of range like any other: the domain says so.
            let limit = u32::try_from(input.limit).unwrap_or(0);
            let command = StaffCommand::SetCustomerLimit { limit };
            let outcome = execute(ctx, &key, staff.as_str(), command, expected, "limit").await?;
            Ok(ChangePayload::changed(staff.to_string(), &outcome))
        })
        .await
    }
}
