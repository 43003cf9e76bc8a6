//! Group membership across two streams: the group decides (capacity lives there),
//! then the customer's stream records it. A crash between the two is repaired by
//! [`GroupMembership::reconcile`], which replays the group's decisions onto its
//! customers; every step is idempotent. See docs/adr/0003-group-join-consistency.md.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::customer::{Customer, CustomerCommand, CustomerError};
use domain::group::{CustomerGroup, GroupCommand, GroupError, GroupEvent, Member};
use domain::stamp::{stream_id, Stamped};
use domain::values::{ExternalUserId, GroupId, TenantId};

use super::{CommandError, CommandMeta, CommandService};

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("group: {0}")]
    Group(#[from] CommandError<GroupError>),
    #[error("customer: {0}")]
    Customer(#[from] CommandError<CustomerError>),
}

/// Joins and leaves that keep a group's stream and its customers' streams in step.
#[allow(missing_debug_implementations)]
pub struct GroupMembership<'a> {
    pub groups: &'a CommandService<CustomerGroup>,
    pub customers: &'a CommandService<Customer>,
}

/// Each step gets its own key derived from the request's, so a retried request
/// skips the steps that already happened and redoes only the missing one.
fn step(meta: &CommandMeta, step: &str) -> CommandMeta {
    let base = meta
        .idempotency_key
        .clone()
        .unwrap_or_else(|| meta.request_id.to_string());
    let mut m = meta.clone();
    m.idempotency_key = Some(format!("{base}:{step}"));
    m.expected_version = None;
    m
}

impl GroupMembership<'_> {
    /// Admits `customer` to `group` (capacity permitting), then records the join on the
    /// customer. Already-done steps are accepted, so calling it again completes a join
    /// that was interrupted.
    pub async fn join(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        customer: &ExternalUserId,
        join_scene: u8,
        at: DateTime<Utc>,
        meta: &CommandMeta,
    ) -> Result<(), MembershipError> {
        let admit = GroupCommand::Admit {
            member: Member::Customer(customer.clone()),
            join_scene,
        };
        match self
            .groups
            .execute(
                &stream_id(tenant, group.as_str()),
                Stamped::new(at, admit),
                &step(meta, "admit"),
            )
            .await
        {
            Ok(_) | Err(CommandError::Rejected(GroupError::AlreadyMember)) => {}
            Err(e) => return Err(e.into()),
        }
        self.record(
            tenant,
            group,
            customer,
            true,
            join_scene,
            at,
            &step(meta, "record"),
        )
        .await
    }

    /// Removes `customer` from `group`, then records the leave on the customer.
    pub async fn leave(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        customer: &ExternalUserId,
        quit_scene: u8,
        at: DateTime<Utc>,
        meta: &CommandMeta,
    ) -> Result<(), MembershipError> {
        let remove = GroupCommand::Remove {
            member: Member::Customer(customer.clone()),
            quit_scene,
        };
        match self
            .groups
            .execute(
                &stream_id(tenant, group.as_str()),
                Stamped::new(at, remove),
                &step(meta, "remove"),
            )
            .await
        {
            Ok(_) | Err(CommandError::Rejected(GroupError::NotMember)) => {}
            Err(e) => return Err(e.into()),
        }
        self.record(
            tenant,
            group,
            customer,
            false,
            quit_scene,
            at,
            &step(meta, "record"),
        )
        .await
    }

    /// Brings every customer the group ever admitted in line with the group's own
    /// membership. Returns how many customer streams had to be repaired.
    pub async fn reconcile(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        at: DateTime<Utc>,
        meta: &CommandMeta,
    ) -> Result<usize, MembershipError> {
        let history = self
            .groups
            .history(&stream_id(tenant, group.as_str()))
            .await?;
        // Last word of the group on each customer: (member?, scene).
        let mut verdicts: BTreeMap<ExternalUserId, (bool, u8)> = BTreeMap::new();
        for event in history {
            match event {
                GroupEvent::MemberAdmitted {
                    member: Member::Customer(c),
                    join_scene,
                    ..
                } => {
                    verdicts.insert(c, (true, join_scene));
                }
                GroupEvent::MemberRemoved {
                    member: Member::Customer(c),
                    quit_scene,
                    ..
                } => {
                    verdicts.insert(c, (false, quit_scene));
                }
                _ => {}
            }
        }
        let mut repaired = 0;
        for (customer, (member, scene)) in verdicts {
            let (state, _) = self
                .customers
                .load(&stream_id(tenant, customer.as_str()))
                .await?;
            if state.groups().contains(group) != member {
                let meta = step(meta, &format!("reconcile:{customer}"));
                self.record(tenant, group, &customer, member, scene, at, &meta)
                    .await?;
                repaired += 1;
            }
        }
        Ok(repaired)
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        customer: &ExternalUserId,
        joined: bool,
        scene: u8,
        at: DateTime<Utc>,
        meta: &CommandMeta,
    ) -> Result<(), MembershipError> {
        let command = if joined {
            CustomerCommand::RecordGroupJoin {
                group: group.clone(),
                join_scene: scene,
            }
        } else {
            CustomerCommand::RecordGroupLeave {
                group: group.clone(),
                quit_scene: scene,
            }
        };
        match self
            .customers
            .execute(
                &stream_id(tenant, customer.as_str()),
                Stamped::new(at, command),
                meta,
            )
            .await
        {
            Ok(_)
            | Err(CommandError::Rejected(
                CustomerError::AlreadyInGroup(_) | CustomerError::NotInGroup(_),
            )) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
