//! The CustomerGroup aggregate (客户群): owner, members and capacity of one WeCom
//! customer group. The capacity rule lives here; the customer's own stream records
//! the join after the group admitted it (docs/adr/0003-group-join-consistency.md).

mod decide;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::stamp::Stamped;
use crate::values::{ExternalUserId, StaffId};

/// A member of a customer group: an external customer or a member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Member {
    Customer(ExternalUserId),
    Staff(StaffId),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupCommand {
    Create {
        owner: StaffId,
        name: String,
        /// The tenant's capacity setting at creation time.
        capacity: u32,
    },
    Admit {
        member: Member,
        join_scene: u8,
    },
    Remove {
        member: Member,
        quit_scene: u8,
    },
    TransferOwnership {
        to: StaffId,
        /// The previous owner leaves the group in the same step (a departed guide's
        /// group): the successor takes their seat, so a full group can still move.
        previous_owner_leaves: bool,
    },
    Rename {
        name: String,
    },
    ChangeNotice {
        notice: String,
    },
    Dismiss,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupEvent {
    GroupCreated {
        owner: StaffId,
        name: String,
        capacity: u32,
        at: DateTime<Utc>,
    },
    MemberAdmitted {
        member: Member,
        join_scene: u8,
        at: DateTime<Utc>,
    },
    MemberRemoved {
        member: Member,
        quit_scene: u8,
        at: DateTime<Utc>,
    },
    OwnershipTransferred {
        from: StaffId,
        to: StaffId,
        previous_owner_left: bool,
        at: DateTime<Utc>,
    },
    GroupRenamed {
        name: String,
        at: DateTime<Utc>,
    },
    NoticeChanged {
        notice: String,
        at: DateTime<Utc>,
    },
    GroupDismissed {
        at: DateTime<Utc>,
    },
}

impl GroupEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::GroupCreated { .. } => "GroupCreated",
            Self::MemberAdmitted { .. } => "MemberAdmitted",
            Self::MemberRemoved { .. } => "MemberRemoved",
            Self::OwnershipTransferred { .. } => "OwnershipTransferred",
            Self::GroupRenamed { .. } => "GroupRenamed",
            Self::NoticeChanged { .. } => "NoticeChanged",
            Self::GroupDismissed { .. } => "GroupDismissed",
        }
    }
}

crate::decide::published_event!(GroupEvent);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the group already exists")]
    AlreadyCreated,
    #[error("no such group")]
    UnknownGroup,
    #[error("the group was dismissed")]
    Dismissed,
    #[error("group capacity must be between 1 and {max}, not {got}")]
    InvalidCapacity { got: u32, max: u32 },
    #[error("the group is full ({capacity} members)")]
    GroupFull { capacity: u32 },
    #[error("already a member of the group")]
    AlreadyMember,
    #[error("not a member of the group")]
    NotMember,
    #[error("the owner cannot leave the group; transfer it first")]
    OwnerCannotLeave,
    #[error("the new owner must differ from the current owner")]
    SameOwner,
    #[error("the group was already transferred 2 times in the last 90 days")]
    TransferLimitReached,
    #[error("{field} is too long: {chars} characters, at most {max}")]
    TextTooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
}

/// A capacity a tenant may give its groups: WeCom's groups hold 1 to
/// [`rules::MAX_GROUP_CAPACITY`] members.
pub fn check_capacity(capacity: u32) -> Result<u32, GroupError> {
    if capacity == 0 || capacity > rules::MAX_GROUP_CAPACITY {
        return Err(GroupError::InvalidCapacity {
            got: capacity,
            max: rules::MAX_GROUP_CAPACITY,
        });
    }
    Ok(capacity)
}

error_codes!(GroupError {
    AlreadyCreated => "GROUP_ALREADY_EXISTS",
    UnknownGroup => "UNKNOWN_GROUP",
    Dismissed => "GROUP_DISMISSED",
    InvalidCapacity { .. } => "INVALID_CAPACITY",
    GroupFull { .. } => "GROUP_FULL",
    AlreadyMember => "ALREADY_MEMBER",
    NotMember => "NOT_MEMBER",
    OwnerCannotLeave => "OWNER_CANNOT_LEAVE",
    SameOwner => "SAME_OWNER",
    TransferLimitReached => "GROUP_TRANSFER_LIMIT_REACHED",
    TextTooLong { .. } => "TEXT_TOO_LONG",
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerGroup {
    created: bool,
    dismissed: bool,
    owner: Option<StaffId>,
    name: String,
    notice: String,
    capacity: u32,
    members: BTreeSet<Member>,
    transfers_at: Vec<DateTime<Utc>>,
}

impl CustomerGroup {
    pub fn owner(&self) -> Option<&StaffId> {
        self.owner.as_ref()
    }

    pub fn members(&self) -> &BTreeSet<Member> {
        &self.members
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group notice (群公告), empty until one is set.
    pub fn notice(&self) -> &str {
        &self.notice
    }

    pub fn is_created(&self) -> bool {
        self.created
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn is_dismissed(&self) -> bool {
        self.dismissed
    }
}

impl Aggregate for CustomerGroup {
    /// Stored in `events.aggregate_type`. Never rename.
    const TYPE: &'static str = "CustomerGroup";
    type Command = Stamped<GroupCommand>;
    type Event = GroupEvent;
    type Error = GroupError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), GroupError> {
        crate::decide::handle(self, command, sink).await
    }

    fn apply(&mut self, event: GroupEvent) {
        match event {
            GroupEvent::GroupCreated {
                owner,
                name,
                capacity,
                ..
            } => {
                self.created = true;
                self.name = name;
                self.capacity = capacity;
                self.members.insert(Member::Staff(owner.clone()));
                self.owner = Some(owner);
            }
            GroupEvent::MemberAdmitted { member, .. } => {
                self.members.insert(member);
            }
            GroupEvent::MemberRemoved { member, .. } => {
                self.members.remove(&member);
            }
            GroupEvent::OwnershipTransferred {
                from,
                to,
                previous_owner_left,
                at,
            } => {
                self.transfers_at.push(at);
                if previous_owner_left {
                    self.members.remove(&Member::Staff(from));
                }
                self.members.insert(Member::Staff(to.clone()));
                self.owner = Some(to);
            }
            GroupEvent::GroupRenamed { name, .. } => {
                self.name = name;
            }
            GroupEvent::NoticeChanged { notice, .. } => {
                self.notice = notice;
            }
            GroupEvent::GroupDismissed { .. } => {
                self.dismissed = true;
            }
        }
    }
}
