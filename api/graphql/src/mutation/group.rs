//! Customer groups: creating one for a member of staff, adding a customer to one.

use async_graphql::{Context, InputObject, Object, ID};
use domain::group::GroupCommand;
use domain::values::{GroupId, StaffId};
use engine::commands::{CommandError, MembershipError};
use serde::Serialize;

use super::customer::visible_customer;
use super::payload::{ChangePayload, CustomerPayload};
use super::run::{derived_id, execute, keyed, meta, once, parse};
use crate::errors::ApiResult;
use crate::guard::{caller, RoleGuard, GUIDES, OPERATIONS};
use crate::user_error::{refusal, UserError};
use crate::{reads, state};

#[derive(Debug, Default)]
pub struct GroupMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct AddCustomerToGroupInput {
    pub customer_id: ID,
    /// WeCom `chat_id` of the customer group.
    pub group_id: String,
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
pub struct SetGroupCapacityInput {
    /// Members a new customer group holds, its owner included (1 to 2,000).
    pub capacity: i32,
    pub idempotency_key: String,
}

keyed!(
    AddCustomerToGroupInput,
    CreateCustomerGroupInput,
    SetGroupCapacityInput
);

#[Object]
impl GroupMutation {
    /// Adds a customer you serve to a customer group (the group admits them first).
    #[graphql(guard = "RoleGuard(GUIDES)")]
    async fn add_customer_to_group(
        &self,
        ctx: &Context<'_>,
        input: AddCustomerToGroupInput,
    ) -> ApiResult<CustomerPayload> {
        once(ctx, "addCustomerToGroup", input, |input, key| async move {
            let caller = caller(ctx)?;
            let state = state(ctx)?;
            let customer = visible_customer(ctx, caller, &input.customer_id).await?;
            let group = parse("groupId", GroupId::parse(input.group_id.as_str()))?;
            let meta = meta(ctx, caller, &key, None);
            // Scene 1: invited directly by a member (WeCom's join_scene).
            let joined = state
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
                .await;
            match joined {
                Ok(()) => Ok(CustomerPayload {
                    customer_id: Some(customer.to_string()),
                    ..Default::default()
                }),
                Err(MembershipError::Group(e)) => Err(refusal(e, "groupId")),
                Err(MembershipError::Customer(e)) => Err(refusal(e, "customerId")),
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
    ) -> ApiResult<ChangePayload> {
        once(ctx, "createCustomerGroup", input, |input, key| async move {
            let caller = caller(ctx)?;
            let id = derived_id("wr", &key);
            let group = parse("name", GroupId::parse(id.as_str()));
            let owner = parse(
                "ownerStaffId",
                StaffId::parse(input.owner_staff_id.as_str()),
            );
            let (group, owner) = (group?, owner?);
            if reads(ctx)?.staff_member(owner.as_str()).await?.is_none() {
                return Err(UserError::not_found("ownerStaffId", "member of staff").into());
            }
            let capacity =
                engine::tenants::group_capacity(&state(ctx)?.engine.db, &caller.tenant).await?;
            let command = GroupCommand::Create {
                owner,
                name: input.name,
                capacity,
            };
            let outcome = execute(ctx, &key, group.as_str(), command, None, "name").await?;
            Ok(ChangePayload::changed(id, &outcome))
        })
        .await
    }

    /// Sets how many members the tenant's new customer groups hold. Groups that exist
    /// keep the capacity they were created with, as in WeCom.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn set_group_capacity(
        &self,
        ctx: &Context<'_>,
        input: SetGroupCapacityInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "setGroupCapacity", input, |input, _key| async move {
            let asked = u32::try_from(input.capacity).unwrap_or(0);
            let capacity = domain::group::check_capacity(asked)
                .map_err(|e| refusal(CommandError::Rejected(e), "capacity"))?;
            let tenant = &caller(ctx)?.tenant;
            engine::tenants::set_group_capacity(&state(ctx)?.engine.db, tenant, capacity).await?;
            Ok(ChangePayload {
                id: Some(tenant.to_string()),
                ..Default::default()
            })
        })
        .await
    }
}
