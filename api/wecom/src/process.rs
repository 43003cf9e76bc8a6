//! From stored notices to domain commands, after the endpoint has answered.
//!
//! [`plan`] is pure: it says which commands a notice maps to, which state it needs read
//! from WeCom's API first ([`Read`]), or why it maps to none. [`contact_steps`],
//! [`chat_steps`] and [`tag_steps`] are pure too: from what the API answered and the
//! engine's state, the commands that bring the engine to WeCom's state.
//! [`process_pending`] takes the inbox's due rows in arrival order, reads the API where
//! needed and executes the plans through the engine's command services. Every command
//! carries an idempotency key derived from the notice's dedup key, so processing a notice
//! again (two processors, a crash between the append and the row update) appends nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{
    AcceptTrigger, AddWay, Customer, CustomerCommand, CustomerError, RefusalReason, Relation,
    RemovedBy,
};
use domain::group::{CustomerGroup, GroupCommand, GroupError, Member};
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::{TagLibrary, TagLibraryCommand};
use domain::values::{ExternalUserId, GroupId, StaffId, TagGroupId, TagId, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use engine::app::Engine;
use engine::commands::{Actor, CommandError, CommandMeta, MembershipError};
use engine::lease::try_lease;

use super::client::{
    ChatMember, ClientError, Contact, CorpTagGroup, FollowTag, GroupChat, TagFilter, TenantApi,
    WecomApi,
};
use super::inbox::{self, InboxError, PendingNotice, Status};
use super::notice::{ChatUpdate, Notice, NoticeKind, TagType, TransferFailReason};

/// Due notices one query takes; a call queries again until none is due.
const NOTICES_PER_CALL: i64 = 500;

/// Queries one call makes at most, so a row that never leaves `pending` cannot keep a
/// processor busy for ever.
const ROUNDS_PER_CALL: usize = 20;

/// API reads a notice gets before it is marked failed.
pub const MAX_ATTEMPTS: i64 = 5;

/// How long a notice waits after its `attempts`-th failed API read, or `None` when that
/// was the last one: 30 s, doubling, at most 10 minutes. Pure.
pub fn retry_delay(attempts: i64) -> Option<chrono::Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let doublings = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let seconds = (30_i64 << doublings).min(600);
    Some(chrono::Duration::seconds(seconds))
}

/// One command (or two-stream step) a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Customer {
        customer: ExternalUserId,
        /// Distinguishes several commands on one customer stream from one notice.
        part: Option<String>,
        command: CustomerCommand,
    },
    /// `del_external_contact` with `Source=DELETE_BY_TRANSFER`: the engine's pending
    /// handover from `staff` is accepted if there is one; otherwise the relation ends as a
    /// transfer (never as churn).
    TransferCompleted {
        customer: ExternalUserId,
        staff: StaffId,
    },
    /// `transfer_fail`: the engine's pending handover involving `staff` is refused.
    TransferFailed {
        customer: ExternalUserId,
        staff: StaffId,
        reason: RefusalReason,
    },
    /// A customer joined a group: the group admits, then the customer records it.
    Join {
        group: GroupId,
        customer: ExternalUserId,
        scene: u8,
    },
    /// A customer left a group.
    Leave {
        group: GroupId,
        customer: ExternalUserId,
        scene: u8,
    },
    Group {
        group: GroupId,
        /// Distinguishes several commands on one group stream from one notice.
        part: Option<String>,
        command: GroupCommand,
    },
    Tags {
        /// Distinguishes several commands on the library stream from one notice.
        part: Option<String>,
        command: TagLibraryCommand,
    },
}

/// Which change of a customer group a read is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatChange {
    Create,
    Owner,
    Name,
    Notice,
    /// Members joined or left, more than the notice lists: the whole member list is
    /// brought in line, leavers with this quit scene.
    Members {
        quit_scene: u8,
    },
}

/// State a thin notice needs read from WeCom's API before it maps to commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// `edit_external_contact`: the relation's remark, description and tags.
    Contact {
        staff: StaffId,
        customer: ExternalUserId,
    },
    /// Group creation and owner, name and notice changes.
    Chat { group: GroupId, change: ChatChange },
    /// Tag and tag-group creation, renames and reordering: that part of the library.
    Tags(TagFilter),
}

/// What the API answered for a notice, as kept in the inbox row's `fetched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fetched {
    Contact(Contact),
    Chat(GroupChat),
    Tags(Vec<CorpTagGroup>),
    /// A friend-add's optional read gave no answer (why): the add went in without it.
    Unanswered(String),
}

/// What a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Commands at the notice's time.
    Steps { at: DateTime<Utc>, steps: Vec<Step> },
    /// Commands at the notice's time, once `read` is answered.
    Fetch { at: DateTime<Utc>, read: Read },
    /// The engine has no command for it; the reason is stored on the row.
    Unhandled(String),
    /// The notice carries a value the domain cannot accept (an id it cannot parse).
    Invalid(String),
}

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
        NoticeKind::Unknown { event, change_type } => {
            return match change_type {
                Some(change) => format!("{event}/{change}"),
                None => event.clone(),
            };
        }
    };
    format!("{event}/{change}")
}

/// WeCom's external user ids start with `wo` (WeCom users) or `wm` (WeChat users); a
/// group's member list mixes them with staff user ids.
fn is_external(id: &str) -> bool {
    id.starts_with("wo") || id.starts_with("wm")
}

fn parse<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, Plan> {
    r.map_err(|e| Plan::Invalid(e.to_string()))
}

fn unhandled(reason: &str) -> Result<Vec<Step>, Plan> {
    Err(Plan::Unhandled(reason.to_owned()))
}

/// Which commands `notice` maps to. Pure.
pub fn plan(notice: &Notice) -> Plan {
    let Some(at) = DateTime::from_timestamp(notice.envelope.time(), 0) else {
        return Plan::Invalid(format!("time {} is out of range", notice.envelope.time()));
    };
    match read(&notice.kind) {
        Ok(Some(read)) => return Plan::Fetch { at, read },
        Ok(None) => {}
        Err(plan) => return plan,
    }
    match steps(&notice.kind) {
        Ok(steps) => Plan::Steps { at, steps },
        Err(plan) => plan,
    }
}

/// The API read a thin notice needs, `None` for a notice that carries its change.
fn read(kind: &NoticeKind) -> Result<Option<Read>, Plan> {
    use NoticeKind as K;
    let chat = |chat_id: &str, change: ChatChange| -> Result<Option<Read>, Plan> {
        Ok(Some(Read::Chat {
            group: parse(GroupId::parse(chat_id))?,
            change,
        }))
    };
    let tags = |id: &str, tag_type: &TagType, change: &str| -> Result<Option<Read>, Plan> {
        match tag_type {
            TagType::Tag => Ok(Some(Read::Tags(TagFilter::Tags(vec![id.to_owned()])))),
            TagType::TagGroup => Ok(Some(Read::Tags(TagFilter::Groups(vec![id.to_owned()])))),
            TagType::Other(other) => Err(Plan::Unhandled(format!(
                "change_external_tag/{change}: unknown TagType `{other}`"
            ))),
        }
    };
    match kind {
        K::ContactEdited {
            staff_id,
            external_user_id,
        } => Ok(Some(Read::Contact {
            staff: parse(StaffId::parse(staff_id.as_str()))?,
            customer: parse(ExternalUserId::parse(external_user_id.as_str()))?,
        })),
        K::ChatCreated { chat_id } => chat(chat_id, ChatChange::Create),
        K::ChatUpdated {
            chat_id, update, ..
        } => match update {
            ChatUpdate::ChangeOwner => chat(chat_id, ChatChange::Owner),
            ChatUpdate::ChangeName => chat(chat_id, ChatChange::Name),
            ChatUpdate::ChangeNotice => chat(chat_id, ChatChange::Notice),
            _ => Ok(None),
        },
        K::TagCreated { id, tag_type, .. } => tags(id, tag_type, "create"),
        K::TagUpdated { id, tag_type, .. } => tags(id, tag_type, "update"),
        K::TagShuffled { group_id, .. } => Ok(Some(Read::Tags(match group_id {
            Some(group) => TagFilter::Groups(vec![group.clone()]),
            None => TagFilter::All,
        }))),
        _ => Ok(None),
    }
}

const THIN: &str = "the notice does not carry the new state";

fn steps(kind: &NoticeKind) -> Result<Vec<Step>, Plan> {
    use NoticeKind as K;
    let ids = |staff: &str, customer: &str| -> Result<(StaffId, ExternalUserId), Plan> {
        Ok((
            parse(StaffId::parse(staff))?,
            parse(ExternalUserId::parse(customer))?,
        ))
    };
    let remove = |staff: &str, customer: &str, by: RemovedBy| -> Result<Vec<Step>, Plan> {
        let (staff, customer) = ids(staff, customer)?;
        Ok(vec![Step::Customer {
            customer,
            part: None,
            command: CustomerCommand::RemoveFriend { staff, by },
        }])
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
            let (staff, customer) = ids(staff_id, external_user_id)?;
            Ok(vec![Step::Customer {
                customer,
                part: None,
                command: CustomerCommand::AddFriend {
                    staff,
                    add_way: AddWay::UNKNOWN,
                    channel_state: state.clone(),
                },
            }])
        }
        K::ContactEdited { .. }
        | K::ChatCreated { .. }
        | K::TagCreated { .. }
        | K::TagUpdated { .. }
        | K::TagShuffled { .. } => unreachable!("read from the API: see `read`"),
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
            Ok(vec![Step::TransferCompleted { customer, staff }])
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
            Ok(vec![Step::TransferFailed {
                customer,
                staff,
                reason,
            }])
        }
        K::ChatDismissed { chat_id } => Ok(vec![Step::Group {
            group: parse(GroupId::parse(chat_id.as_str()))?,
            part: None,
            command: GroupCommand::Dismiss,
        }]),
        K::ChatUpdated {
            chat_id, update, ..
        } => chat_update(chat_id, update),
        K::TagDeleted { id, tag_type, .. } => match tag_type {
            TagType::Tag => Ok(vec![Step::Tags {
                part: None,
                command: TagLibraryCommand::DeleteTag {
                    tag: parse(TagId::parse(id.as_str()))?,
                },
            }]),
            TagType::TagGroup => Ok(vec![Step::Tags {
                part: None,
                command: TagLibraryCommand::DeleteGroup {
                    group: parse(TagGroupId::parse(id.as_str()))?,
                },
            }]),
            TagType::Other(other) => unhandled(&format!(
                "change_external_tag/delete: unknown TagType `{other}`"
            )),
        },
        K::Unknown { .. } => unhandled("unknown event type"),
    }
}

fn chat_update(chat_id: &str, update: &ChatUpdate) -> Result<Vec<Step>, Plan> {
    let group = parse(GroupId::parse(chat_id))?;
    let scene = |s: Option<u32>| -> Result<u8, Plan> {
        parse(u8::try_from(s.unwrap_or(0)).map_err(|_| "scene is not a WeCom scene code"))
    };
    let (member_ids, join, scene) = match update {
        ChatUpdate::AddMember {
            join_scene,
            member_ids,
            ..
        } => (member_ids, true, scene(*join_scene)?),
        ChatUpdate::DelMember {
            quit_scene,
            member_ids,
            ..
        } => (member_ids, false, scene(*quit_scene)?),
        ChatUpdate::ChangeOwner | ChatUpdate::ChangeName | ChatUpdate::ChangeNotice => {
            unreachable!("read from the API: see `read`")
        }
        ChatUpdate::Other(other) => {
            return unhandled(&format!(
                "change_external_chat/update: unknown UpdateDetail `{other}`"
            ))
        }
    };
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

/// The commands that bring `staff`'s relation with the customer (`relation`, `None` when
/// the engine knows none) to what WeCom answered: the remark and description, and the
/// enterprise tags (personal and rule-group tags are not in the library). Pure.
pub fn contact_steps(
    staff: &StaffId,
    customer: &ExternalUserId,
    relation: Option<&Relation>,
    library: &TagLibrary,
    contact: &Contact,
) -> Result<Vec<Step>, Plan> {
    let Some(follow) = contact
        .follow_user
        .iter()
        .find(|f| f.userid == staff.as_str())
    else {
        return Err(Plan::Unhandled(format!(
            "edit_external_contact: WeCom lists no relation of {staff} with the customer any more"
        )));
    };
    let step = |part: String, command| Step::Customer {
        customer: customer.clone(),
        part: Some(part),
        command,
    };
    let mut steps = Vec::new();
    // Without a relation the remark step still goes, so the domain's rejection
    // (UNKNOWN_CUSTOMER, NOT_A_FRIEND) is what the row records.
    if relation.is_none_or(|r| r.remark != follow.remark || r.description != follow.description) {
        steps.push(step(
            "remark".into(),
            CustomerCommand::ChangeRemark {
                staff: staff.clone(),
                remark: follow.remark.clone(),
                description: follow.description.clone(),
            },
        ));
    }
    let mut wanted = BTreeSet::new();
    for tag in &follow.tags {
        if let (FollowTag::ENTERPRISE, Some(id)) = (tag.kind, &tag.tag_id) {
            wanted.insert(parse(TagId::parse(id.as_str()))?);
        }
    }
    let current = relation.map(|r| r.tags.clone()).unwrap_or_default();
    for tag in wanted.difference(&current) {
        steps.push(step(
            format!("tag:+{tag}"),
            CustomerCommand::Tag {
                staff: staff.clone(),
                tag: tag.clone(),
                tag_state: library.tag_state(tag),
            },
        ));
    }
    for tag in current.difference(&wanted) {
        steps.push(step(
            format!("tag:-{tag}"),
            CustomerCommand::Untag {
                staff: staff.clone(),
                tag: tag.clone(),
            },
        ));
    }
    Ok(steps)
}

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

/// WeCom's `order` as the library keeps it (WeCom documents it as a 32-bit unsigned value).
fn order(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The commands that bring the library to what WeCom answered for part of it: groups
/// and tags created or renamed, then their order. Entries WeCom marks deleted are left
/// to their own delete notices. Pure.
pub fn tag_steps(library: &TagLibrary, groups: &[CorpTagGroup]) -> Result<Vec<Step>, Plan> {
    let step = |part: String, command| Step::Tags {
        part: Some(part),
        command,
    };
    let mut steps = Vec::new();
    let mut group_order = Vec::new();
    for g in groups.iter().filter(|g| !g.deleted) {
        let group = parse(TagGroupId::parse(g.group_id.as_str()))?;
        let known = library.group(&group);
        match known {
            None => steps.push(step(
                format!("group:{group}:create"),
                TagLibraryCommand::CreateGroup {
                    group: group.clone(),
                    name: g.group_name.clone(),
                },
            )),
            Some(entry) if entry.name != g.group_name => steps.push(step(
                format!("group:{group}:name"),
                TagLibraryCommand::RenameGroup {
                    group: group.clone(),
                    name: g.group_name.clone(),
                },
            )),
            Some(_) => {}
        }
        if known.map_or(0, |e| e.order) != order(g.order) {
            group_order.push((group.clone(), order(g.order)));
        }
        let mut tag_order = Vec::new();
        for t in g.tag.iter().filter(|t| !t.deleted) {
            let tag = parse(TagId::parse(t.id.as_str()))?;
            let known = library.tag(&tag);
            match known {
                None => steps.push(step(
                    format!("tag:{tag}:create"),
                    TagLibraryCommand::CreateTag {
                        tag: tag.clone(),
                        group: group.clone(),
                        name: t.name.clone(),
                    },
                )),
                Some(entry) if entry.name != t.name => steps.push(step(
                    format!("tag:{tag}:name"),
                    TagLibraryCommand::RenameTag {
                        tag: tag.clone(),
                        name: t.name.clone(),
                    },
                )),
                Some(_) => {}
            }
            if known.map_or(0, |e| e.order) != order(t.order) {
                tag_order.push((tag, order(t.order)));
            }
        }
        if !tag_order.is_empty() {
            steps.push(step(
                format!("order:{group}"),
                TagLibraryCommand::OrderTags {
                    group,
                    order: tag_order,
                },
            ));
        }
    }
    if !group_order.is_empty() {
        steps.push(step(
            "order:groups".into(),
            TagLibraryCommand::OrderGroups { order: group_order },
        ));
    }
    Ok(steps)
}

/// Whether WeCom's answer for `filter` holds what was asked for: a tag or group that
/// is missing (a rule-group tag, or deleted since) has nothing to sync. Pure.
fn tags_answered(filter: &TagFilter, groups: &[CorpTagGroup]) -> bool {
    match filter {
        TagFilter::All => true,
        TagFilter::Groups(ids) => ids
            .iter()
            .all(|id| groups.iter().any(|g| &g.group_id == id)),
        TagFilter::Tags(ids) => ids
            .iter()
            .all(|id| groups.iter().any(|g| g.tag.iter().any(|t| &t.id == id))),
    }
}

/// How one step ended.
enum StepResult {
    Done,
    /// A business rejection: its stable code and message.
    Rejected(&'static str, String),
}

fn rejected<E: std::error::Error>(
    e: CommandError<E>,
    code: impl Fn(&E) -> &'static str,
) -> Result<StepResult, InboxError> {
    match e {
        CommandError::Rejected(r) => Ok(StepResult::Rejected(code(&r), r.to_string())),
        // The key is only reused when an earlier run applied this notice to the stream
        // with a command decided on an older state: the notice is already applied.
        CommandError::IdempotencyKeyReused => Ok(StepResult::Done),
        other => Err(InboxError::Commands(other.to_string())),
    }
}

fn membership(e: MembershipError) -> Result<StepResult, InboxError> {
    match e {
        MembershipError::Group(e) => rejected(e, GroupError::code),
        MembershipError::Customer(e) => rejected(e, CustomerError::code),
    }
}

/// Serialises processors within the process: notices about one customer must apply in
/// arrival order, and the endpoint starts a processor after every stored notice.
static PROCESSING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// Across server processes on one PostgreSQL database: `engine::lease`.

/// What one call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processed {
    pub processed: usize,
    pub unhandled: usize,
    pub failed: usize,
    /// Left pending after a failed API read, to be tried again later.
    pub deferred: usize,
}

/// How one notice's run ended.
enum Outcome {
    Concluded(Status, Option<String>),
    /// The API read failed: pending until `at`, after `attempts` failed reads.
    Deferred {
        attempts: i64,
        at: DateTime<Utc>,
        error: String,
    },
}

/// Turns due pending notices into commands and concludes their rows. A store error
/// stops the call and leaves the notice pending for the next one. When another server
/// process is processing, returns at once: that process queries again before it stops,
/// and the next tick here picks up anything left.
pub async fn process_pending(
    engine: &Engine,
    api: &WecomApi,
    now: DateTime<Utc>,
) -> Result<Processed, InboxError> {
    let _serial = PROCESSING.lock().await;
    let Some(lease) = try_lease(&engine.db, "scrm-wecom-inbox").await? else {
        return Ok(Processed::default());
    };
    let done = process_rounds(engine, api, now).await;
    lease.release().await;
    done
}

/// The inbox as the job runner's periodic work: due notices applied on every tick.
#[derive(Debug, Clone)]
pub struct InboxTick {
    pub api: WecomApi,
}

#[async_trait::async_trait]
impl engine::jobs::Periodic for InboxTick {
    async fn tick(&self, jobs: &engine::jobs::Jobs) {
        if let Err(error) = process_pending(jobs.engine(), &self.api, jobs.clock().now()).await {
            tracing::error!(%error, "could not process WeCom notices");
        }
    }
}

async fn process_rounds(
    engine: &Engine,
    api: &WecomApi,
    now: DateTime<Utc>,
) -> Result<Processed, InboxError> {
    let mut done = Processed::default();
    for _ in 0..ROUNDS_PER_CALL {
        let rows = inbox::pending(&engine.db, now, NOTICES_PER_CALL).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            match process_one(engine, api, &row, now).await? {
                Outcome::Concluded(status, error) => {
                    match status {
                        Status::Processed => done.processed += 1,
                        Status::Unhandled => done.unhandled += 1,
                        _ => done.failed += 1,
                    }
                    if let Some(error) = &error {
                        tracing::info!(tenant = %row.tenant_id, kind = %row.kind,
                            status = status.as_str(), %error, "wecom notice not applied");
                    }
                    inbox::mark(
                        &engine.db,
                        &row.tenant_id,
                        &row.dedup_key,
                        status,
                        error.as_deref(),
                        now,
                    )
                    .await?;
                }
                Outcome::Deferred {
                    attempts,
                    at,
                    error,
                } => {
                    done.deferred += 1;
                    tracing::warn!(tenant = %row.tenant_id, kind = %row.kind, attempts,
                        retry_at = %at, %error, "wecom notice waits for WeCom's API");
                    inbox::defer(
                        &engine.db,
                        &row.tenant_id,
                        &row.dedup_key,
                        attempts,
                        at,
                        &error,
                    )
                    .await?;
                }
            }
        }
    }
    Ok(done)
}

fn store_error<E: std::fmt::Display>(e: E) -> InboxError {
    InboxError::Commands(e.to_string())
}

/// What an earlier run of the notice read from WeCom (or decided without it), if any.
fn earlier_read(row: &PendingNotice) -> Option<Fetched> {
    row.fetched
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
}

/// Reads what `read` asks for from WeCom.
async fn read_api(api: &TenantApi<'_>, read: &Read) -> Result<Fetched, ClientError> {
    Ok(match read {
        Read::Contact { customer, .. } => {
            Fetched::Contact(api.external_contact(customer.as_str()).await?)
        }
        Read::Chat { group, .. } => Fetched::Chat(api.group_chat(group.as_str()).await?),
        Read::Tags(filter) => Fetched::Tags(api.corp_tags(filter).await?),
    })
}

/// The steps of a notice that needs `read`: from the row's earlier read if it has one,
/// else from the API (kept on the row before anything is applied), against the
/// engine's current state.
async fn fetched_steps(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    read: &Read,
    now: DateTime<Utc>,
) -> Result<Result<Vec<Step>, Outcome>, InboxError> {
    let fetched = match earlier_read(row) {
        Some(fetched) => fetched,
        None => {
            let credentials = inbox::config(&engine.db, tenant).await?.and_then(|c| c.api);
            let Some(credentials) = credentials else {
                return Ok(Err(Outcome::Concluded(
                    Status::Unhandled,
                    Some(format!(
                        "{}: {THIN}, and reading it needs WeCom API credentials, which \
                         this tenant has not configured (scrm wecom configure --corp-id, \
                         with the corp secret)",
                        row.kind
                    )),
                )));
            };
            let api = api.for_tenant(tenant.as_str(), &credentials);
            match read_api(&api, read).await {
                Ok(fetched) => {
                    let json = serde_json::to_string(&fetched).map_err(store_error)?;
                    inbox::save_fetched(&engine.db, &row.tenant_id, &row.dedup_key, &json).await?;
                    fetched
                }
                Err(error) => {
                    let attempts = row.attempts + 1;
                    let error = format!("WECOM_API: {error}");
                    return Ok(Err(match retry_delay(attempts) {
                        Some(delay) => Outcome::Deferred {
                            attempts,
                            at: now + delay,
                            error,
                        },
                        None => Outcome::Concluded(
                            Status::Failed,
                            Some(format!("{error} (gave up after {attempts} attempts)")),
                        ),
                    }));
                }
            }
        }
    };
    let library = || async {
        engine
            .tags
            .load(&stream_id(tenant, TAG_LIBRARY_LOCAL_ID))
            .await
            .map(|(library, _)| library)
            .map_err(store_error)
    };
    let steps = match (read, &fetched) {
        (Read::Contact { staff, customer }, Fetched::Contact(contact)) => {
            let (state, _) = engine
                .customers
                .load(&stream_id(tenant, customer.as_str()))
                .await
                .map_err(store_error)?;
            contact_steps(
                staff,
                customer,
                state.relation(staff),
                &library().await?,
                contact,
            )
        }
        (Read::Chat { group, change }, Fetched::Chat(chat)) => {
            group_steps(engine, tenant, group, *change, chat).await?
        }
        (Read::Tags(filter), Fetched::Tags(groups)) => {
            if tags_answered(filter, groups) {
                tag_steps(&library().await?, groups)
            } else {
                Err(Plan::Unhandled(format!(
                    "{}: WeCom's enterprise tag list has no {filter:?} (a rule-group tag, \
                     or deleted since)",
                    row.kind
                )))
            }
        }
        _ => Err(Plan::Invalid(
            "the stored API answer is not for this notice".into(),
        )),
    };
    Ok(steps.map_err(|plan| match plan {
        Plan::Unhandled(reason) => Outcome::Concluded(Status::Unhandled, Some(reason)),
        Plan::Invalid(reason) => {
            Outcome::Concluded(Status::Failed, Some(format!("INVALID: {reason}")))
        }
        Plan::Steps { .. } | Plan::Fetch { .. } => {
            Outcome::Concluded(Status::Failed, Some("INVALID: no steps".into()))
        }
    }))
}

/// A friend-add as WeCom's API describes the relation: how the customer was added
/// (`add_way`, which the notice lacks) and, when the notice has none, the channel
/// `state`. Steps other than adds with an unknown way pass through unchanged. Pure.
pub fn with_add_way(steps: Vec<Step>, contact: &Contact) -> Vec<Step> {
    steps
        .into_iter()
        .map(|step| match step {
            Step::Customer {
                customer,
                part,
                command:
                    CustomerCommand::AddFriend {
                        staff,
                        add_way: AddWay::UNKNOWN,
                        channel_state,
                    },
            } => {
                let follow = contact
                    .follow_user
                    .iter()
                    .find(|f| f.userid == staff.as_str());
                let add_way = follow
                    .and_then(|f| f.add_way)
                    .and_then(|w| u16::try_from(w).ok())
                    .map_or(AddWay::UNKNOWN, AddWay);
                let channel_state = channel_state.or_else(|| follow.and_then(|f| f.state.clone()));
                Step::Customer {
                    customer,
                    part,
                    command: CustomerCommand::AddFriend {
                        staff,
                        add_way,
                        channel_state,
                    },
                }
            }
            other => other,
        })
        .collect()
}

/// The staff and customer of a friend-add whose way is unknown, if `steps` hold one.
fn unknown_add(steps: &[Step]) -> Option<(StaffId, ExternalUserId)> {
    steps.iter().find_map(|step| match step {
        Step::Customer {
            customer,
            command:
                CustomerCommand::AddFriend {
                    staff,
                    add_way: AddWay::UNKNOWN,
                    ..
                },
            ..
        } => Some((staff.clone(), customer.clone())),
        _ => None,
    })
}

/// A read that completes what a notice says but must not hold it up: the row's earlier
/// decision, else WeCom's answer, else why there is none (no API credentials, an
/// unreachable API, an error; no retry). The decision is kept on the row before
/// anything is applied, so a notice processed again repeats the very same commands
/// (their idempotency keys would refuse different ones).
async fn optional_read(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    read: &Read,
) -> Result<Fetched, InboxError> {
    if let Some(fetched) = earlier_read(row) {
        return Ok(fetched);
    }
    let credentials = inbox::config(&engine.db, tenant).await?.and_then(|c| c.api);
    let fetched = match credentials {
        None => Fetched::Unanswered("no WeCom API credentials".into()),
        Some(credentials) => {
            let api = api.for_tenant(tenant.as_str(), &credentials);
            read_api(&api, read).await.unwrap_or_else(|error| {
                tracing::warn!(tenant = %tenant, kind = %row.kind, %error,
                    "wecom notice applied as it came, without WeCom's answer");
                Fetched::Unanswered(error.to_string())
            })
        }
    };
    let json = serde_json::to_string(&fetched).map_err(store_error)?;
    inbox::save_fetched(&engine.db, &row.tenant_id, &row.dedup_key, &json).await?;
    Ok(fetched)
}

/// A friend-add with the way WeCom says the customer was added, when it says.
async fn enrich_add(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    steps: Vec<Step>,
) -> Result<Vec<Step>, InboxError> {
    let Some((staff, customer)) = unknown_add(&steps) else {
        return Ok(steps);
    };
    let read = Read::Contact { staff, customer };
    Ok(
        match optional_read(engine, api, tenant, row, &read).await? {
            Fetched::Contact(contact) => with_add_way(steps, &contact),
            _ => steps,
        },
    )
}

/// A member change whose list WeCom cut short (`MemChangeCnt` above the ids listed):
/// the group and the scene of any leave.
fn truncated_members(kind: &NoticeKind) -> Option<(&str, Option<u32>)> {
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

/// A member change cut short, made whole from the group's member list as WeCom answers
/// it; without an answer, the members the notice lists.
async fn enrich_members(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    kind: &NoticeKind,
    steps: Vec<Step>,
) -> Result<Result<Vec<Step>, Plan>, InboxError> {
    let Some((chat_id, quit_scene)) = truncated_members(kind) else {
        return Ok(Ok(steps));
    };
    let group = match GroupId::parse(chat_id) {
        Ok(group) => group,
        Err(e) => return Ok(Err(Plan::Invalid(e.to_string()))),
    };
    let quit_scene = match u8::try_from(quit_scene.unwrap_or(0)) {
        Ok(scene) => scene,
        Err(_) => return Ok(Err(Plan::Invalid("quit scene out of range".into()))),
    };
    let change = ChatChange::Members { quit_scene };
    let read = Read::Chat {
        group: group.clone(),
        change,
    };
    let Fetched::Chat(chat) = optional_read(engine, api, tenant, row, &read).await? else {
        return Ok(Ok(steps));
    };
    group_steps(engine, tenant, &group, change, &chat).await
}

/// [`chat_steps`] against the group as the engine has it now.
async fn group_steps(
    engine: &Engine,
    tenant: &TenantId,
    group: &GroupId,
    change: ChatChange,
    chat: &GroupChat,
) -> Result<Result<Vec<Step>, Plan>, InboxError> {
    let (state, _) = engine
        .groups
        .load(&stream_id(tenant, group.as_str()))
        .await
        .map_err(store_error)?;
    let capacity = engine::tenants::group_capacity(&engine.db, tenant).await?;
    Ok(chat_steps(group, &state, capacity, change, chat))
}

async fn process_one(
    engine: &Engine,
    api: &WecomApi,
    row: &PendingNotice,
    now: DateTime<Utc>,
) -> Result<Outcome, InboxError> {
    let concluded = |status, error: String| Ok(Outcome::Concluded(status, Some(error)));
    let tenant = match TenantId::parse(row.tenant_id.as_str()) {
        Ok(t) => t,
        Err(e) => return concluded(Status::Failed, format!("INVALID_TENANT: {e}")),
    };
    let notice = match Notice::parse(row.payload.as_bytes()) {
        Ok(n) => n,
        Err(e) => return concluded(Status::Failed, format!("UNPARSABLE: {e}")),
    };
    let (at, steps) = match plan(&notice) {
        Plan::Steps { at, steps } => {
            let steps = enrich_add(engine, api, &tenant, row, steps).await?;
            match enrich_members(engine, api, &tenant, row, &notice.kind, steps).await? {
                Ok(steps) => (at, steps),
                Err(Plan::Invalid(reason)) => {
                    return concluded(Status::Failed, format!("INVALID: {reason}"))
                }
                Err(Plan::Unhandled(reason)) => return concluded(Status::Unhandled, reason),
                Err(_) => return concluded(Status::Failed, "INVALID: no steps".into()),
            }
        }
        Plan::Fetch { at, read } => {
            match fetched_steps(engine, api, &tenant, row, &read, now).await? {
                Ok(steps) => (at, steps),
                Err(outcome) => return Ok(outcome),
            }
        }
        Plan::Unhandled(reason) => return concluded(Status::Unhandled, reason),
        Plan::Invalid(reason) => return concluded(Status::Failed, format!("INVALID: {reason}")),
    };
    let meta = CommandMeta::new(
        tenant.clone(),
        Actor::integration("wecom"),
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("wecom/{}", row.dedup_key).as_bytes(),
        ),
    );
    let key = format!("wecom:{}", row.dedup_key);
    let mut rejections = Vec::new();
    for step in steps {
        if let StepResult::Rejected(code, message) =
            execute(engine, &tenant, at, step, &meta, &key).await?
        {
            rejections.push(format!("{code}: {message}"));
        }
    }
    if rejections.is_empty() {
        Ok(Outcome::Concluded(Status::Processed, None))
    } else {
        concluded(Status::Failed, rejections.join("; "))
    }
}

async fn execute(
    engine: &Engine,
    tenant: &TenantId,
    at: DateTime<Utc>,
    step: Step,
    meta: &CommandMeta,
    key: &str,
) -> Result<StepResult, InboxError> {
    let keyed = |k: String| meta.clone().with_idempotency_key(k);
    let part_key = |part: Option<String>| match part {
        Some(part) => format!("{key}:{part}"),
        None => key.to_owned(),
    };
    match step {
        Step::Customer {
            customer,
            part,
            command,
        } => {
            let stream = stream_id(tenant, customer.as_str());
            let done = engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(part_key(part)))
                .await;
            answered(done, CustomerError::code)
        }
        Step::TransferCompleted { customer, staff } => {
            let stream = stream_id(tenant, customer.as_str());
            let Some(state) = unapplied(engine, &stream, key).await? else {
                return Ok(StepResult::Done);
            };
            let command = match state.pending_handover().filter(|p| p.from == staff) {
                Some(pending) => CustomerCommand::AcceptHandover {
                    handover: pending.handover,
                    trigger: AcceptTrigger::Reported,
                },
                None => CustomerCommand::RemoveFriend {
                    staff,
                    by: RemovedBy::Transfer,
                },
            };
            let done = engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(key.to_owned()))
                .await;
            answered(done, CustomerError::code)
        }
        Step::TransferFailed {
            customer,
            staff,
            reason,
        } => {
            let stream = stream_id(tenant, customer.as_str());
            let Some(state) = unapplied(engine, &stream, key).await? else {
                return Ok(StepResult::Done);
            };
            let Some(pending) = state
                .pending_handover()
                .filter(|p| p.to == staff || p.from == staff)
            else {
                let e = CustomerError::NoSuchHandover;
                return Ok(StepResult::Rejected(e.code(), e.to_string()));
            };
            let command = CustomerCommand::RefuseHandover {
                handover: pending.handover,
                reason,
            };
            let done = engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(key.to_owned()))
                .await;
            answered(done, CustomerError::code)
        }
        Step::Join {
            group,
            customer,
            scene,
        } => {
            let key = keyed(format!("{key}:{customer}"));
            let done = engine
                .membership()
                .join(tenant, &group, &customer, scene, at, &key)
                .await;
            done.map_or_else(membership, |()| Ok(StepResult::Done))
        }
        Step::Leave {
            group,
            customer,
            scene,
        } => {
            let key = keyed(format!("{key}:{customer}"));
            let done = engine
                .membership()
                .leave(tenant, &group, &customer, scene, at, &key)
                .await;
            done.map_or_else(membership, |()| Ok(StepResult::Done))
        }
        Step::Group {
            group,
            part,
            command,
        } => {
            let stream = stream_id(tenant, group.as_str());
            let done = engine
                .groups
                .execute(&stream, Stamped::new(at, command), &keyed(part_key(part)))
                .await;
            answered(done, GroupError::code)
        }
        Step::Tags { part, command } => {
            let stream = stream_id(tenant, TAG_LIBRARY_LOCAL_ID);
            let done = engine
                .tags
                .execute(&stream, Stamped::new(at, command), &keyed(part_key(part)))
                .await;
            answered(done, domain::tags::TagLibraryError::code)
        }
    }
}

/// A command's answer as the notice's outcome.
fn answered<T, E: std::error::Error>(
    done: Result<T, CommandError<E>>,
    code: impl Fn(&E) -> &'static str,
) -> Result<StepResult, InboxError> {
    done.map_or_else(|e| rejected(e, code), |_| Ok(StepResult::Done))
}

/// The customer's state, unless this notice (`key`) was already applied to the stream:
/// a handover's outcome is decided on the state, so a redelivery must not decide again.
async fn unapplied(
    engine: &Engine,
    stream: &str,
    key: &str,
) -> Result<Option<Customer>, InboxError> {
    if inbox::key_used(&engine.db, Customer::TYPE, stream, key).await? {
        return Ok(None);
    }
    let (state, _) = engine
        .customers
        .load(stream)
        .await
        .map_err(|e| InboxError::Commands(e.to_string()))?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(xml: &str) -> Notice {
        Notice::parse(xml.as_bytes()).unwrap()
    }

    fn contact(change: &str, extra: &str) -> Notice {
        notice(&format!(
            "<xml><ToUserName>corp</ToUserName><FromUserName>sys</FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
             <Event>change_external_contact</Event><ChangeType>{change}</ChangeType>\
             <UserID>zhangsan</UserID><ExternalUserID>woABC</ExternalUserID>{extra}</xml>"
        ))
    }

    fn steps_of(p: Plan) -> Vec<Step> {
        match p {
            Plan::Steps { steps, at } => {
                assert_eq!(at.timestamp(), 1_700_000_000);
                steps
            }
            other => panic!("expected steps, got {other:?}"),
        }
    }

    #[test]
    fn adds_half_adds_and_removals_map_to_customer_commands() {
        for change in ["add_external_contact", "add_half_external_contact"] {
            let steps = steps_of(plan(&contact(change, "<State>s1</State>")));
            assert!(matches!(
                &steps[..],
                [Step::Customer { command: CustomerCommand::AddFriend { channel_state: Some(s), .. }, .. }]
                    if s == "s1"
            ));
        }
        let by = |n: Notice| match &steps_of(plan(&n))[..] {
            [Step::Customer {
                command: CustomerCommand::RemoveFriend { by, .. },
                ..
            }] => *by,
            other => panic!("{other:?}"),
        };
        assert_eq!(by(contact("del_external_contact", "")), RemovedBy::Staff);
        assert_eq!(by(contact("del_follow_user", "")), RemovedBy::Customer);
        assert!(matches!(
            &steps_of(plan(&contact(
                "del_external_contact",
                "<Source>DELETE_BY_TRANSFER</Source>"
            )))[..],
            [Step::TransferCompleted { .. }]
        ));
    }

    #[test]
    fn transfer_failures_carry_the_refusal_reason() {
        let n = contact(
            "transfer_fail",
            "<FailReason>customer_limit_exceed</FailReason>",
        );
        assert!(matches!(
            &steps_of(plan(&n))[..],
            [Step::TransferFailed {
                reason: RefusalReason::CustomerLimitExceeded,
                ..
            }]
        ));
        let n = contact("transfer_fail", "<FailReason>other</FailReason>");
        assert!(matches!(plan(&n), Plan::Unhandled(_)));
    }

    #[test]
    fn thin_notices_are_read_from_the_api_first() {
        assert!(matches!(
            plan(&contact("edit_external_contact", "")),
            Plan::Fetch {
                read: Read::Contact { .. },
                ..
            }
        ));
        let chat = |change: &str, extra: &str| {
            notice(&format!(
                "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
                 <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
                 <Event>change_external_chat</Event><ChatId>wrX</ChatId>\
                 <ChangeType>{change}</ChangeType>{extra}</xml>"
            ))
        };
        assert!(matches!(
            plan(&chat("create", "")),
            Plan::Fetch {
                read: Read::Chat {
                    change: ChatChange::Create,
                    ..
                },
                ..
            }
        ));
        for (detail, want) in [
            ("change_owner", ChatChange::Owner),
            ("change_name", ChatChange::Name),
            ("change_notice", ChatChange::Notice),
        ] {
            let n = chat("update", &format!("<UpdateDetail>{detail}</UpdateDetail>"));
            assert!(
                matches!(plan(&n), Plan::Fetch { read: Read::Chat { change, .. }, .. } if change == want),
                "{detail}"
            );
        }
        let n = chat("update", "<UpdateDetail>new_thing</UpdateDetail>");
        assert!(matches!(plan(&n), Plan::Unhandled(_)));
        assert!(matches!(
            &steps_of(plan(&chat("dismiss", "")))[..],
            [Step::Group {
                command: GroupCommand::Dismiss,
                ..
            }]
        ));
        let tag = |change: &str, id: &str, tag_type: &str| {
            notice(&format!(
                "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
                 <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
                 <Event>change_external_tag</Event><Id>{id}</Id><TagType>{tag_type}</TagType>\
                 <ChangeType>{change}</ChangeType></xml>"
            ))
        };
        let filter = |n: Notice| match plan(&n) {
            Plan::Fetch {
                read: Read::Tags(filter),
                ..
            } => filter,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            filter(tag("create", "et1", "tag")),
            TagFilter::Tags(vec!["et1".into()])
        );
        assert_eq!(
            filter(tag("update", "eg1", "tag_group")),
            TagFilter::Groups(vec!["eg1".into()])
        );
        assert_eq!(
            filter(tag("shuffle", "eg1", "tag_group")),
            TagFilter::Groups(vec!["eg1".into()])
        );
        assert_eq!(filter(tag("shuffle", "", "tag_group")), TagFilter::All);
    }

    // ------------------------------------------------------------ API answers to commands

    fn staff_id(s: &str) -> StaffId {
        StaffId::parse(s).unwrap()
    }

    fn tag_id(s: &str) -> TagId {
        TagId::parse(s).unwrap()
    }

    fn library(events: Vec<domain::tags::TagLibraryEvent>) -> TagLibrary {
        let mut library = TagLibrary::default();
        for e in events {
            library.apply(e);
        }
        library
    }

    fn gold_library() -> TagLibrary {
        use domain::tags::TagLibraryEvent as E;
        let at = DateTime::from_timestamp(0, 0).unwrap();
        library(vec![
            E::TagGroupCreated {
                group: TagGroupId::parse("egTIER").unwrap(),
                name: "Tier".into(),
                at,
            },
            E::TagCreated {
                tag: tag_id("etGOLD"),
                group: TagGroupId::parse("egTIER").unwrap(),
                name: "Gold".into(),
                at,
            },
            E::TagCreated {
                tag: tag_id("etSILVER"),
                group: TagGroupId::parse("egTIER").unwrap(),
                name: "Silver".into(),
                at,
            },
        ])
    }

    fn answer(staff: &str, remark: &str, tags: &[(&str, i64)]) -> Contact {
        serde_json::from_value(serde_json::json!({
            "external_contact": {"external_userid": "woABC", "name": "Li", "type": 1},
            "follow_user": [{"userid": staff, "remark": remark, "description": "d",
                "tags": tags.iter().map(|(id, kind)| serde_json::json!(
                    {"group_name": "g", "tag_name": "t", "tag_id": id, "type": kind}))
                    .collect::<Vec<_>>()}]
        }))
        .unwrap()
    }

    #[test]
    fn a_friend_add_takes_its_way_and_channel_from_wecoms_answer() {
        let add = |extra: &str| steps_of(plan(&contact("add_external_contact", extra)));
        let way_and_state = |steps: &[Step]| match steps {
            [Step::Customer {
                command:
                    CustomerCommand::AddFriend {
                        add_way,
                        channel_state,
                        ..
                    },
                ..
            }] => (*add_way, channel_state.clone()),
            other => panic!("{other:?}"),
        };
        let mut wecom = answer("zhangsan", "", &[]);
        wecom.follow_user[0].add_way = Some(1);
        wecom.follow_user[0].state = Some("store-qr".into());

        // Given an add without a state, WeCom's way and state are taken
        let steps = with_add_way(add(""), &wecom);
        assert_eq!(
            way_and_state(&steps),
            (AddWay::QR_CODE, Some("store-qr".into()))
        );
        // the notice's own state wins over the answer's,
        let steps = with_add_way(add("<State>s1</State>"), &wecom);
        assert_eq!(way_and_state(&steps), (AddWay::QR_CODE, Some("s1".into())));
        // and an answer that lists no such relation, or no way, changes nothing.
        for answer in [answer("lisi", "", &[]), answer("zhangsan", "", &[])] {
            let steps = with_add_way(add(""), &answer);
            assert_eq!(way_and_state(&steps), (AddWay::UNKNOWN, None));
        }
        // Other notices pass through.
        let removal = steps_of(plan(&contact("del_external_contact", "")));
        assert_eq!(with_add_way(removal.clone(), &wecom), removal);
    }

    fn relation(remark: &str, tags: &[&str]) -> Relation {
        Relation {
            added_at: DateTime::from_timestamp(0, 0).unwrap(),
            add_way: AddWay::UNKNOWN,
            remark: remark.into(),
            description: "d".into(),
            tags: tags.iter().map(|t| tag_id(t)).collect(),
        }
    }

    fn parts(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Customer { part, .. }
                | Step::Group { part, .. }
                | Step::Tags { part, .. } => part.clone().unwrap_or_default(),
                Step::Join { customer, .. } => format!("join:{customer}"),
                Step::Leave {
                    customer, scene, ..
                } => format!("leave:{customer}:{scene}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_edit_brings_the_remark_and_enterprise_tags_to_wecoms() {
        let customer = ExternalUserId::parse("woABC").unwrap();
        // Given a relation with remark "old" and the tag Silver, when WeCom says
        // remark "VIP", tags Gold (enterprise) and a personal tag,
        let given = relation("old", &["etSILVER"]);
        let got = answer("zhangsan", "VIP", &[("etGOLD", 1), ("etMINE", 2)]);
        let steps = contact_steps(
            &staff_id("zhangsan"),
            &customer,
            Some(&given),
            &gold_library(),
            &got,
        )
        .unwrap();
        // then the remark changes, Gold is added (active in the library), Silver removed.
        assert_eq!(parts(&steps), ["remark", "tag:+etGOLD", "tag:-etSILVER"]);
        assert!(matches!(
            &steps[1],
            Step::Customer {
                command: CustomerCommand::Tag {
                    tag_state: domain::customer::TagState::Active,
                    ..
                },
                ..
            }
        ));
        // When the engine already has WeCom's state, nothing is issued.
        let same = relation("VIP", &["etGOLD"]);
        let none = contact_steps(
            &staff_id("zhangsan"),
            &customer,
            Some(&same),
            &gold_library(),
            &got,
        )
        .unwrap();
        assert!(none.is_empty(), "{none:?}");
        // Without a relation the remark still goes, so the domain's rejection is recorded.
        let unknown = contact_steps(
            &staff_id("zhangsan"),
            &customer,
            None,
            &gold_library(),
            &got,
        )
        .unwrap();
        assert_eq!(parts(&unknown), ["remark", "tag:+etGOLD"]);
        // A relation WeCom no longer lists is unhandled.
        assert!(matches!(
            contact_steps(&staff_id("lisi"), &customer, None, &gold_library(), &got),
            Err(Plan::Unhandled(_))
        ));
    }

    fn chat_answer(owner: &str, name: &str, notice: &str, members: &[(&str, i64)]) -> GroupChat {
        serde_json::from_value(serde_json::json!({
            "chat_id": "wrX", "name": name, "owner": owner, "notice": notice,
            "member_list": members.iter().map(|(id, kind)| serde_json::json!(
                {"userid": id, "type": kind, "join_scene": 3})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    fn group_state(events: Vec<domain::group::GroupEvent>) -> CustomerGroup {
        let mut g = CustomerGroup::default();
        for e in events {
            g.apply(e);
        }
        g
    }

    fn created_group() -> CustomerGroup {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        group_state(vec![domain::group::GroupEvent::GroupCreated {
            owner: staff_id("zhangsan"),
            name: "VIP".into(),
            capacity: 500,
            at,
        }])
    }

    #[test]
    fn an_unknown_group_is_registered_with_its_owner_name_notice_and_members() {
        let group = GroupId::parse("wrX").unwrap();
        let chat = chat_answer(
            "zhangsan",
            "VIP",
            "hello",
            &[("zhangsan", 1), ("lisi", 1), ("wmCUST", 2)],
        );
        for change in [ChatChange::Create, ChatChange::Owner, ChatChange::Name] {
            let steps = chat_steps(&group, &CustomerGroup::default(), 200, change, &chat).unwrap();
            assert_eq!(
                parts(&steps),
                ["create", "notice", "admit:lisi", "join:wmCUST"]
            );
            assert!(matches!(
                &steps[0],
                Step::Group {
                    command: GroupCommand::Create { capacity: 200, .. },
                    ..
                }
            ));
            assert!(matches!(&steps[3], Step::Join { scene: 3, .. }));
        }
    }

    #[test]
    fn a_known_group_gets_only_the_change_the_notice_names() {
        let group = GroupId::parse("wrX").unwrap();
        let chat = chat_answer("lisi", "Gold club", "sale", &[("lisi", 1), ("wmCUST", 2)]);
        let steps = |change| chat_steps(&group, &created_group(), 500, change, &chat).unwrap();
        let owner = steps(ChatChange::Owner);
        // zhangsan is no longer in WeCom's member list: they left with the transfer.
        assert!(matches!(
            &owner[..],
            [Step::Group { command: GroupCommand::TransferOwnership { to, previous_owner_leaves: true }, .. }]
                if to.as_str() == "lisi"
        ));
        assert!(matches!(
            &steps(ChatChange::Name)[..],
            [Step::Group { command: GroupCommand::Rename { name }, .. }] if name == "Gold club"
        ));
        assert!(matches!(
            &steps(ChatChange::Notice)[..],
            [Step::Group { command: GroupCommand::ChangeNotice { notice }, .. }] if notice == "sale"
        ));
        assert_eq!(
            parts(&steps(ChatChange::Create)),
            ["admit:lisi", "join:wmCUST"]
        );
        // WeCom's state equals the engine's: nothing to do.
        let same = chat_answer("zhangsan", "VIP", "", &[("zhangsan", 1)]);
        for change in [
            ChatChange::Owner,
            ChatChange::Name,
            ChatChange::Notice,
            ChatChange::Create,
        ] {
            assert!(chat_steps(&group, &created_group(), 500, change, &same)
                .unwrap()
                .is_empty());
        }
    }

    #[test]
    fn a_member_change_cut_short_brings_the_members_to_wecoms_list() {
        let group = GroupId::parse("wrX").unwrap();
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let admitted = |member| domain::group::GroupEvent::MemberAdmitted {
            member,
            join_scene: 3,
            at,
        };
        // Given zhangsan's group with lisi, wmOLD and wmSTAYS in it
        let mut events = vec![domain::group::GroupEvent::GroupCreated {
            owner: staff_id("zhangsan"),
            name: "VIP".into(),
            capacity: 500,
            at,
        }];
        for member in [
            Member::Staff(staff_id("lisi")),
            Member::Customer(ExternalUserId::parse("wmOLD").unwrap()),
            Member::Customer(ExternalUserId::parse("wmSTAYS").unwrap()),
        ] {
            events.push(admitted(member));
        }
        let state = group_state(events);
        // when WeCom lists zhangsan, wmSTAYS and two newcomers (no lisi, no wmOLD)
        let chat = chat_answer(
            "zhangsan",
            "VIP",
            "",
            &[
                ("zhangsan", 1),
                ("wmSTAYS", 2),
                ("wmNEW1", 2),
                ("wmNEW2", 2),
            ],
        );
        let change = ChatChange::Members { quit_scene: 1 };
        let steps = chat_steps(&group, &state, 500, change, &chat).unwrap();
        // then the newcomers join and the others leave, with the notice's quit scene.
        assert_eq!(
            parts(&steps),
            ["join:wmNEW1", "join:wmNEW2", "leave:wmOLD:1", "remove:lisi"]
        );
        // Once in line, there is nothing more to do; the owner never leaves.
        let owner_unlisted = chat_answer("zhangsan", "VIP", "", &[]);
        let settled = group_state(vec![domain::group::GroupEvent::GroupCreated {
            owner: staff_id("zhangsan"),
            name: "VIP".into(),
            capacity: 500,
            at,
        }]);
        assert!(chat_steps(&group, &settled, 500, change, &owner_unlisted)
            .unwrap()
            .is_empty());
    }

    fn corp_tags(value: serde_json::Value) -> Vec<CorpTagGroup> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_library_follows_wecoms_names_and_order() {
        // Given Tier {Gold, Silver} at order 0, when WeCom lists Tier renamed "Level"
        // (order 2) with Gold renamed, Silver ordered 5, a new tag Bronze, and a new group,
        let groups = corp_tags(serde_json::json!([
            {"group_id": "egTIER", "group_name": "Level", "order": 2, "tag": [
                {"id": "etGOLD", "name": "Gold+", "order": 0},
                {"id": "etSILVER", "name": "Silver", "order": 5},
                {"id": "etBRONZE", "name": "Bronze", "order": 1},
                {"id": "etGONE", "name": "Gone", "order": 0, "deleted": true}]},
            {"group_id": "egSTYLE", "group_name": "Style", "order": 0, "tag": [
                {"id": "etCLASSIC", "name": "Classic", "order": 0}]}
        ]));
        let steps = tag_steps(&gold_library(), &groups).unwrap();
        // then the library renames, creates and reorders, creations before orders.
        assert_eq!(
            parts(&steps),
            [
                "group:egTIER:name",
                "tag:etGOLD:name",
                "tag:etBRONZE:create",
                "order:egTIER",
                "group:egSTYLE:create",
                "tag:etCLASSIC:create",
                "order:groups",
            ]
        );
        assert!(matches!(
            &steps[3],
            Step::Tags { command: TagLibraryCommand::OrderTags { order, .. }, .. }
                if order == &vec![(tag_id("etSILVER"), 5), (tag_id("etBRONZE"), 1)]
        ));
        // The same answer against a library that already matches: nothing.
        let matching = corp_tags(serde_json::json!([
            {"group_id": "egTIER", "group_name": "Tier", "order": 0, "tag": [
                {"id": "etGOLD", "name": "Gold", "order": 0}]}
        ]));
        assert!(tag_steps(&gold_library(), &matching).unwrap().is_empty());
        assert!(tags_answered(
            &TagFilter::Tags(vec!["etGOLD".into()]),
            &matching
        ));
        assert!(!tags_answered(
            &TagFilter::Tags(vec!["etX".into()]),
            &matching
        ));
        assert!(!tags_answered(
            &TagFilter::Groups(vec!["egX".into()]),
            &matching
        ));
    }

    #[test]
    fn failed_reads_wait_longer_each_time_and_stop_after_the_last_attempt() {
        let delays: Vec<i64> = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n).unwrap().num_seconds())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240]);
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
    }

    #[test]
    fn group_members_split_into_customers_and_staff() {
        let n = notice(
            "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
             <Event>change_external_chat</Event><ChatId>wrX</ChatId>\
             <ChangeType>update</ChangeType><UpdateDetail>add_member</UpdateDetail>\
             <JoinScene>3</JoinScene>\
             <MemChangeList><Item>wmA</Item><Item>lisi</Item></MemChangeList></xml>",
        );
        let steps = steps_of(plan(&n));
        assert!(
            matches!(&steps[0], Step::Join { scene: 3, customer, .. } if customer.as_str() == "wmA")
        );
        assert!(matches!(
            &steps[1],
            Step::Group { command: GroupCommand::Admit { member: Member::Staff(s), join_scene: 3 }, .. }
                if s.as_str() == "lisi"
        ));
    }

    #[test]
    fn ids_the_domain_rejects_make_the_notice_invalid() {
        let n = notice(
            "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
             <Event>change_external_contact</Event><ChangeType>del_follow_user</ChangeType>\
             <UserID>a b</UserID><ExternalUserID>wo1</ExternalUserID></xml>",
        );
        assert!(matches!(plan(&n), Plan::Invalid(_)));
    }

    #[test]
    fn kind_names_follow_wecom_names() {
        assert_eq!(
            kind_name(&contact("add_half_external_contact", "").kind),
            "change_external_contact/add_half_external_contact"
        );
        assert_eq!(
            kind_name(&NoticeKind::Unknown {
                event: "change_contact".into(),
                change_type: Some("create_user".into())
            }),
            "change_contact/create_user"
        );
    }
}
