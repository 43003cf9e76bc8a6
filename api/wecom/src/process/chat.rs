//! A customer group as WeCom's API describes it: the steps that bring the engine's group
//! to it, and member changes the notice cut short. Pure.

use std::collections::BTreeSet;

use domain::group::{CustomerGroup, GroupCommand, Member};
use domain::values::{ExternalUserId, GroupId, StaffId};

use super::plan::parse;
use super::{ChatChange, Plan, Step};
use crate::client::{ChatMember, GroupChat};
use crate::notice::{ChatUpdate, NoticeKind};

fn scene(code: i64) -> Result<u8, Plan> {
    parse(u8::try_from(code).map_err(|_| "join_scene is not a WeCom scene code"))
}

/// The commands that bring the engine's group (`state`) to what WeCom answered for a
/// `change` notice. A group the engine does not know yet is registered with its owner,
/// name, notice and members as they are now, whatever the change. Pure.
pub fn chat_steps(
    group: &GroupId,
    state: &CustomerGroup,
    capacity: u32,
    change: ChatChange,
    chat: &GroupChat,
) -> Result<Vec<Step>, Plan> {
    let owner = parse(StaffId::parse(chat.owner.as_str()))?;
    let command = |part: &str, command| Step::Group {
        group: group.clone(),
        part: Some(part.to_owned()),
        command,
    };
    let mut steps = Vec::new();
    let created = state.is_created();
    if !created {
        steps.push(command(
            "create",
            GroupCommand::Create {
                owner: owner.clone(),
                name: chat.name.clone(),
                capacity,
            },
        ));
        if !chat.notice.is_empty() {
            steps.push(command(
                "notice",
                GroupCommand::ChangeNotice {
                    notice: chat.notice.clone(),
                },
            ));
        }
    }
    let members = matches!(change, ChatChange::Members { .. });
    if !created || change == ChatChange::Create || members {
        let mut listed = BTreeSet::new();
        for m in &chat.member_list {
            let member = match m.kind {
                // Creating the group seats its owner.
                ChatMember::STAFF if !created && m.userid == owner.as_str() => continue,
                ChatMember::STAFF => Member::Staff(parse(StaffId::parse(m.userid.as_str()))?),
                ChatMember::EXTERNAL => {
                    Member::Customer(parse(ExternalUserId::parse(m.userid.as_str()))?)
                }
                other => {
                    return Err(Plan::Invalid(format!(
                        "member {} has an unknown type {other}",
                        m.userid
                    )))
                }
            };
            let known = state.members().contains(&member);
            listed.insert(member.clone());
            if known {
                continue;
            }
            let join_scene = scene(m.join_scene)?;
            steps.push(match member {
                Member::Customer(customer) => Step::Join {
                    group: group.clone(),
                    customer,
                    scene: join_scene,
                },
                member => command(
                    &format!("admit:{}", m.userid),
                    GroupCommand::Admit { member, join_scene },
                ),
            });
        }
        if let (true, ChatChange::Members { quit_scene }) = (created, change) {
            for member in state.members().iter().filter(|m| !listed.contains(*m)) {
                // The owner is seated by the group itself, whatever the list says.
                if matches!(member, Member::Staff(s) if state.owner() == Some(s)) {
                    continue;
                }
                steps.push(match member.clone() {
                    Member::Customer(customer) => Step::Leave {
                        group: group.clone(),
                        customer,
                        scene: quit_scene,
                    },
                    Member::Staff(staff) => command(
                        &format!("remove:{staff}"),
                        GroupCommand::Remove {
                            member: Member::Staff(staff),
                            quit_scene,
                        },
                    ),
                });
            }
        }
        return Ok(steps);
    }
    match change {
        ChatChange::Create | ChatChange::Members { .. } => {}
        ChatChange::Owner => {
            if let Some(previous) = state.owner().filter(|o| **o != owner) {
                let stays = chat
                    .member_list
                    .iter()
                    .any(|m| m.kind == ChatMember::STAFF && m.userid == previous.as_str());
                steps.push(command(
                    "owner",
                    GroupCommand::TransferOwnership {
                        to: owner,
                        previous_owner_leaves: !stays,
                    },
                ));
            }
        }
        ChatChange::Name => {
            if state.name() != chat.name {
                steps.push(command(
                    "name",
                    GroupCommand::Rename {
                        name: chat.name.clone(),
                    },
                ));
            }
        }
        ChatChange::Notice => {
            if state.notice() != chat.notice {
                steps.push(command(
                    "notice",
                    GroupCommand::ChangeNotice {
                        notice: chat.notice.clone(),
                    },
                ));
            }
        }
    }
    Ok(steps)
}

/// A member change whose list WeCom cut short (`MemChangeCnt` above the ids listed):
/// the group and the scene of any leave.
pub(super) fn truncated_members(kind: &NoticeKind) -> Option<(&str, Option<u32>)> {
    let NoticeKind::ChatUpdated {
        chat_id, update, ..
    } = kind
    else {
        return None;
    };
    let (count, listed, quit_scene) = match update {
        ChatUpdate::AddMember {
            mem_change_cnt,
            member_ids,
            ..
        } => (*mem_change_cnt, member_ids.len(), None),
        ChatUpdate::DelMember {
            quit_scene,
            mem_change_cnt,
            member_ids,
        } => (*mem_change_cnt, member_ids.len(), *quit_scene),
        _ => return None,
    };
    let count = usize::try_from(count?).ok()?;
    (count > listed).then_some((chat_id.as_str(), quit_scene))
}
