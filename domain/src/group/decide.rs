//! The group's rules: capacity, membership, ownership transfers.

use chrono::{DateTime, Utc};

use super::{CustomerGroup, GroupCommand, GroupError, GroupEvent, Member};
use crate::rules;

/// WeCom allows group names of up to 30 characters and notices of up to 1,000.
const GROUP_NAME_MAX_CHARS: usize = 30;
const NOTICE_MAX_CHARS: usize = 1_000;

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), GroupError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(GroupError::TextTooLong { field, chars, max });
    }
    Ok(())
}

impl CustomerGroup {
    /// Decides what `command`, arriving at `at`, makes happen. Pure.
    pub fn decide(
        &self,
        command: GroupCommand,
        at: DateTime<Utc>,
    ) -> Result<Vec<GroupEvent>, GroupError> {
        if let GroupCommand::Create {
            owner,
            name,
            capacity,
        } = command
        {
            if self.created {
                return Err(GroupError::AlreadyCreated);
            }
            super::check_capacity(capacity)?;
            check_len("name", &name, GROUP_NAME_MAX_CHARS)?;
            return Ok(vec![GroupEvent::GroupCreated {
                owner,
                name,
                capacity,
                at,
            }]);
        }
        if !self.created {
            return Err(GroupError::UnknownGroup);
        }
        if self.dismissed {
            return Err(GroupError::Dismissed);
        }
        match command {
            GroupCommand::Create { .. } => unreachable!("handled above"),
            GroupCommand::Admit { member, join_scene } => {
                if self.members.contains(&member) {
                    return Err(GroupError::AlreadyMember);
                }
                if self.members.len() >= self.capacity as usize {
                    return Err(GroupError::GroupFull {
                        capacity: self.capacity,
                    });
                }
                Ok(vec![GroupEvent::MemberAdmitted {
                    member,
                    join_scene,
                    at,
                }])
            }
            GroupCommand::Remove { member, quit_scene } => {
                if !self.members.contains(&member) {
                    return Err(GroupError::NotMember);
                }
                if matches!(&member, Member::Staff(s) if Some(s) == self.owner.as_ref()) {
                    return Err(GroupError::OwnerCannotLeave);
                }
                Ok(vec![GroupEvent::MemberRemoved {
                    member,
                    quit_scene,
                    at,
                }])
            }
            GroupCommand::TransferOwnership {
                to,
                previous_owner_leaves,
            } => {
                let from = self.owner.clone().ok_or(GroupError::UnknownGroup)?;
                if from == to {
                    return Err(GroupError::SameOwner);
                }
                let since = at - rules::handover_period();
                let recent = self.transfers_at.iter().filter(|t| **t > since).count();
                if recent >= rules::GROUP_TRANSFERS_PER_PERIOD {
                    return Err(GroupError::TransferLimitReached);
                }
                let joins = !self.members.contains(&Member::Staff(to.clone()));
                let staying = self.members.len() - usize::from(previous_owner_leaves);
                if joins && staying >= self.capacity as usize {
                    return Err(GroupError::GroupFull {
                        capacity: self.capacity,
                    });
                }
                Ok(vec![GroupEvent::OwnershipTransferred {
                    from,
                    to,
                    previous_owner_left: previous_owner_leaves,
                    at,
                }])
            }
            GroupCommand::Rename { name } => {
                check_len("name", &name, GROUP_NAME_MAX_CHARS)?;
                Ok(vec![GroupEvent::GroupRenamed { name, at }])
            }
            GroupCommand::ChangeNotice { notice } => {
                check_len("notice", &notice, NOTICE_MAX_CHARS)?;
                Ok(vec![GroupEvent::NoticeChanged { notice, at }])
            }
            GroupCommand::Dismiss => Ok(vec![GroupEvent::GroupDismissed { at }]),
        }
    }
}
