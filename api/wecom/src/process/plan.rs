//! What a notice maps to, decided from the notice alone: commands, a read of WeCom's API
//! first, or why none. Pure.

use chrono::DateTime;
use domain::customer::{AddWay, CustomerCommand, RefusalReason, RemovedBy};
use domain::group::{GroupCommand, Member};
use domain::stamp::TAG_LIBRARY_LOCAL_ID;
use domain::tags::TagLibraryCommand;
use domain::values::{ExternalUserId, GroupId, StaffId, TagGroupId, TagId};

use super::{ChatChange, DirectoryStep, Plan, Read, Step};
use crate::client::{DirectoryUser, TagFilter};
use crate::notice::{ChatUpdate, Notice, NoticeKind, TagType, TransferFailReason};

/// The `kind` column: event, change type and update detail, joined by `/`.
pub fn kind_name(kind: &NoticeKind) -> String {
    let (event, change) = match kind {
        NoticeKind::ContactAdded { half: false, .. } => {
            ("change_external_contact", "add_external_contact")
        }
        NoticeKind::ContactAdded { half: true, .. } => {
            ("change_external_contact", "add_half_external_contact")
        }
        NoticeKind::ContactEdited { .. } => ("change_external_contact", "edit_external_contact"),
        NoticeKind::ContactDeleted { .. } => ("change_external_contact", "del_external_contact"),
        NoticeKind::FollowUserDeleted { .. } => ("change_external_contact", "del_follow_user"),
        NoticeKind::TransferFailed { .. } => ("change_external_contact", "transfer_fail"),
        NoticeKind::ChatCreated { .. } => ("change_external_chat", "create"),
        NoticeKind::ChatDismissed { .. } => ("change_external_chat", "dismiss"),
        NoticeKind::ChatUpdated { update, .. } => {
            let detail = match update {
                ChatUpdate::AddMember { .. } => "add_member",
                ChatUpdate::DelMember { .. } => "del_member",
                ChatUpdate::ChangeOwner => "change_owner",
                ChatUpdate::ChangeName => "change_name",
                ChatUpdate::ChangeNotice => "change_notice",
                ChatUpdate::Other(other) => other,
            };
            return format!("change_external_chat/update/{detail}");
        }
        NoticeKind::TagCreated { .. } => ("change_external_tag", "create"),
        NoticeKind::TagUpdated { .. } => ("change_external_tag", "update"),
        NoticeKind::TagDeleted { .. } => ("change_external_tag", "delete"),
        NoticeKind::TagShuffled { .. } => ("change_external_tag", "shuffle"),
        NoticeKind::StaffChanged { created: true, .. } => ("change_contact", "create_user"),
        NoticeKind::StaffChanged { created: false, .. } => ("change_contact", "update_user"),
        NoticeKind::StaffDeleted { .. } => ("change_contact", "delete_user"),
        NoticeKind::DepartmentChanged { created: true, .. } => ("change_contact", "create_party"),
        NoticeKind::DepartmentChanged { created: false, .. } => ("change_contact", "update_party"),
        NoticeKind::DepartmentDeleted { .. } => ("change_contact", "delete_party"),
        NoticeKind::Unknown { event, change_type } => {
            return match change_type {
                Some(change) => format!("{event}/{change}"),
                None => event.clone(),
            };
        }
    };
    format!("{event}/{change}")
}

/// The stream a notice is about, whose notices must apply in arrival order (the
/// `subject` column): the customer, the group or the tag library, by local id; `None`
/// for a notice that maps to no command. A group's member change also touches its
/// customers' streams, but it is ordered with the group's notices: its steps on a
/// customer (joined, left) do not depend on the friend relations the contact notices
/// change.
pub fn subject(kind: &NoticeKind) -> Option<&str> {
    use NoticeKind as K;
    match kind {
        K::ContactAdded {
            external_user_id, ..
        }
        | K::ContactEdited {
            external_user_id, ..
        }
        | K::ContactDeleted {
            external_user_id, ..
        }
        | K::FollowUserDeleted {
            external_user_id, ..
        }
        | K::TransferFailed {
            external_user_id, ..
        } => Some(external_user_id),
        K::ChatCreated { chat_id }
        | K::ChatUpdated { chat_id, .. }
        | K::ChatDismissed { chat_id } => Some(chat_id),
        K::TagCreated { .. }
        | K::TagUpdated { .. }
        | K::TagDeleted { .. }
        | K::TagShuffled { .. } => Some(TAG_LIBRARY_LOCAL_ID),
        K::StaffChanged { user_id, .. } | K::StaffDeleted { user_id } => Some(user_id),
        K::DepartmentChanged { .. } | K::DepartmentDeleted { .. } => Some(DEPARTMENTS_SUBJECT),
        K::Unknown { .. } => None,
    }
}

/// The subject of department notices: one order for the whole department tree.
const DEPARTMENTS_SUBJECT: &str = "wecom-departments";

/// WeCom's external user ids start with `wo` (WeCom users) or `wm` (WeChat users); a
/// group's member list mixes them with staff user ids.
fn is_external(id: &str) -> bool {
    id.starts_with("wo") || id.starts_with("wm")
}

/// A value the domain refuses makes the notice invalid, with the domain's reason.
pub(super) fn parse<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, Plan> {
    r.map_err(|e| Plan::Invalid(e.to_string()))
}

/// The notice maps to no command, for `reason`.
pub(super) fn unhandled<T>(reason: &str) -> Result<T, Plan> {
    Err(Plan::Unhandled(reason.to_owned()))
}

/// Why a thin notice needs a read.
pub(super) const THIN: &str = "the notice does not carry the new state";

/// What a notice's kind maps to before its time is attached.
enum Mapped {
    /// Commands the notice carries.
    Steps(Vec<Step>),
    /// State to read from WeCom's API first: the notice does not carry it.
    Read(Read),
}

/// Which commands `notice` maps to. Pure.
pub fn plan(notice: &Notice) -> Plan {
    let Some(at) = DateTime::from_timestamp(notice.envelope.time(), 0) else {
        return Plan::Invalid(format!("time {} is out of range", notice.envelope.time()));
    };
    match map(&notice.kind) {
        Ok(Mapped::Steps(steps)) => Plan::Steps { at, steps },
        Ok(Mapped::Read(read)) => Plan::Fetch { at, read },
        Err(plan) => plan,
    }
}

/// The one match over the notice's kind: its commands, or the read a thin notice needs.
fn map(kind: &NoticeKind) -> Result<Mapped, Plan> {
    use NoticeKind as K;
    let ids = |staff: &str, customer: &str| -> Result<(StaffId, ExternalUserId), Plan> {
        Ok((
            parse(StaffId::parse(staff))?,
            parse(ExternalUserId::parse(customer))?,
        ))
    };
    let customer = |customer, command| {
        Ok(Mapped::Steps(vec![Step::Customer {
            customer,
            part: None,
            command,
        }]))
    };
    let remove = |staff: &str, customer_id: &str, by: RemovedBy| -> Result<Mapped, Plan> {
        let (staff, customer_id) = ids(staff, customer_id)?;
        customer(customer_id, CustomerCommand::RemoveFriend { staff, by })
    };
    let chat = |chat_id: &str, change: ChatChange| -> Result<Mapped, Plan> {
        Ok(Mapped::Read(Read::Chat {
            group: parse(GroupId::parse(chat_id))?,
            change,
        }))
    };
    let tags = |id: &str, tag_type: &TagType, change: &str| -> Result<Mapped, Plan> {
        match tag_type {
            TagType::Tag => Ok(Mapped::Read(Read::Tags(TagFilter::Tags(vec![
                id.to_owned()
            ])))),
            TagType::TagGroup => Ok(Mapped::Read(Read::Tags(TagFilter::Groups(vec![
                id.to_owned()
            ])))),
            TagType::Other(other) => Err(Plan::Unhandled(format!(
                "change_external_tag/{change}: unknown TagType `{other}`"
            ))),
        }
    };
    let library = |command| {
        Ok(Mapped::Steps(vec![Step::Tags {
            part: None,
            command,
        }]))
    };
    match kind {
        K::ContactAdded {
            staff_id,
            external_user_id,
            state,
            ..
        } => {
            // The notice carries no add_way; `with_add_way` fills it in from
            // externalcontact/get where the tenant lets the engine read it.
            let (staff, customer_id) = ids(staff_id, external_user_id)?;
            customer(
                customer_id,
                CustomerCommand::AddFriend {
                    staff,
                    add_way: AddWay::UNKNOWN,
                    channel_state: state.clone(),
                },
            )
        }
        K::ContactEdited {
            staff_id,
            external_user_id,
        } => Ok(Mapped::Read(Read::Contact {
            staff: parse(StaffId::parse(staff_id.as_str()))?,
            customer: parse(ExternalUserId::parse(external_user_id.as_str()))?,
        })),
        K::ContactDeleted {
            staff_id,
            external_user_id,
            by_transfer: false,
        } => remove(staff_id, external_user_id, RemovedBy::Staff),
        K::ContactDeleted {
            staff_id,
            external_user_id,
            by_transfer: true,
        } => {
            let (staff, customer) = ids(staff_id, external_user_id)?;
            Ok(Mapped::Steps(vec![Step::TransferCompleted {
                customer,
                staff,
            }]))
        }
        K::FollowUserDeleted {
            staff_id,
            external_user_id,
        } => remove(staff_id, external_user_id, RemovedBy::Customer),
        K::TransferFailed {
            staff_id,
            external_user_id,
            fail_reason,
        } => {
            let reason = match fail_reason {
                Some(TransferFailReason::CustomerRefused) => RefusalReason::CustomerRefused,
                Some(TransferFailReason::CustomerLimitExceed) => {
                    RefusalReason::CustomerLimitExceeded
                }
                Some(TransferFailReason::Other(other)) => {
                    return unhandled(&format!("transfer_fail: unknown FailReason `{other}`"))
                }
                None => return unhandled("transfer_fail without a FailReason"),
            };
            let (staff, customer) = ids(staff_id, external_user_id)?;
            Ok(Mapped::Steps(vec![Step::TransferFailed {
                customer,
                staff,
                reason,
            }]))
        }
        K::ChatCreated { chat_id } => chat(chat_id, ChatChange::Create),
        K::ChatDismissed { chat_id } => Ok(Mapped::Steps(vec![Step::Group {
            group: parse(GroupId::parse(chat_id.as_str()))?,
            part: None,
            command: GroupCommand::Dismiss,
        }])),
        K::ChatUpdated {
            chat_id, update, ..
        } => match update {
            ChatUpdate::ChangeOwner => chat(chat_id, ChatChange::Owner),
            ChatUpdate::ChangeName => chat(chat_id, ChatChange::Name),
            ChatUpdate::ChangeNotice => chat(chat_id, ChatChange::Notice),
            ChatUpdate::AddMember {
                join_scene,
                member_ids,
                ..
            } => member_change(chat_id, member_ids, true, *join_scene).map(Mapped::Steps),
            ChatUpdate::DelMember {
                quit_scene,
                member_ids,
                ..
            } => member_change(chat_id, member_ids, false, *quit_scene).map(Mapped::Steps),
            ChatUpdate::Other(other) => {
                parse(GroupId::parse(chat_id.as_str()))?;
                unhandled(&format!(
                    "change_external_chat/update: unknown UpdateDetail `{other}`"
                ))
            }
        },
        K::TagCreated { id, tag_type, .. } => tags(id, tag_type, "create"),
        K::TagUpdated { id, tag_type, .. } => tags(id, tag_type, "update"),
        K::TagShuffled { group_id, .. } => Ok(Mapped::Read(Read::Tags(match group_id {
            Some(group) => TagFilter::Groups(vec![group.clone()]),
            None => TagFilter::All,
        }))),
        K::TagDeleted { id, tag_type, .. } => match tag_type {
            TagType::Tag => library(TagLibraryCommand::DeleteTag {
                tag: parse(TagId::parse(id.as_str()))?,
            }),
            TagType::TagGroup => library(TagLibraryCommand::DeleteGroup {
                group: parse(TagGroupId::parse(id.as_str()))?,
            }),
            TagType::Other(other) => unhandled(&format!(
                "change_external_tag/delete: unknown TagType `{other}`"
            )),
        },
        K::StaffChanged { .. } | K::StaffDeleted { .. } => staff_change(kind).map(Mapped::Steps),
        K::DepartmentChanged {
            id,
            name,
            parent_id,
            order,
            ..
        } => Ok(Mapped::Steps(vec![Step::Directory(
            DirectoryStep::Department {
                id: *id,
                name: name.clone(),
                parent: *parent_id,
                order: *order,
            },
        )])),
        K::DepartmentDeleted { id } => Ok(Mapped::Steps(vec![Step::Directory(
            DirectoryStep::DepartmentDeleted { id: *id },
        )])),
        K::Unknown { .. } => unhandled("unknown event type"),
    }
}

/// A member of staff created, updated or deleted in the directory. The engine keeps of
/// them only their store (their main department's), title at registration and
/// departure: an update that changes none of those maps to no command.
fn staff_change(kind: &NoticeKind) -> Result<Vec<Step>, Plan> {
    let step = |staff| Ok(vec![Step::Directory(staff)]);
    match kind {
        NoticeKind::StaffDeleted { user_id } => step(DirectoryStep::Gone {
            staff: parse(StaffId::parse(user_id.as_str()))?,
        }),
        NoticeKind::StaffChanged {
            user_id,
            new_user_id,
            name,
            departments,
            main_department,
            position,
            status,
            created,
        } => {
            let staff = parse(StaffId::parse(user_id.as_str()))?;
            if new_user_id.as_deref().is_some_and(|new| new != user_id) {
                return unhandled(
                    "change_contact/update_user: NewUserID; the engine's staff ids are WeCom \
                     userids, and a member's streams are not renamed",
                );
            }
            if *status == Some(DirectoryUser::EXITED) {
                return step(DirectoryStep::Gone { staff });
            }
            let change = if *created {
                "create_user"
            } else {
                "update_user"
            };
            match main_department
                .filter(|d| *d != 0)
                .or(departments.first().copied())
            {
                Some(department) => step(DirectoryStep::Staff {
                    staff,
                    name: name.clone(),
                    department,
                    title: position.clone(),
                }),
                None => unhandled(&format!(
                    "change_contact/{change}: no Department; the engine keeps a member's \
                     store (their main department's), and nothing else this notice changes"
                )),
            }
        }
        _ => unhandled("not a staff notice"),
    }
}

/// Members that joined (`join`) or left a group, as the notice lists them: customers
/// join and leave across two streams, staff only on the group's.
fn member_change(
    chat_id: &str,
    member_ids: &[String],
    join: bool,
    scene: Option<u32>,
) -> Result<Vec<Step>, Plan> {
    let group = parse(GroupId::parse(chat_id))?;
    let scene =
        parse(u8::try_from(scene.unwrap_or(0)).map_err(|_| "scene is not a WeCom scene code"))?;
    if member_ids.is_empty() {
        return unhandled(&format!(
            "change_external_chat/update: no MemChangeList; {THIN} and the engine does not \
             read member lists from WeCom's API"
        ));
    }
    let mut steps = Vec::with_capacity(member_ids.len());
    for id in member_ids {
        let step = if is_external(id) {
            let customer = parse(ExternalUserId::parse(id.as_str()))?;
            if join {
                Step::Join {
                    group: group.clone(),
                    customer,
                    scene,
                }
            } else {
                Step::Leave {
                    group: group.clone(),
                    customer,
                    scene,
                }
            }
        } else {
            let member = Member::Staff(parse(StaffId::parse(id.as_str()))?);
            Step::Group {
                group: group.clone(),
                part: Some(id.clone()),
                command: if join {
                    GroupCommand::Admit {
                        member,
                        join_scene: scene,
                    }
                } else {
                    GroupCommand::Remove {
                        member,
                        quit_scene: scene,
                    }
                },
            }
        };
        steps.push(step);
    }
    Ok(steps)
}
