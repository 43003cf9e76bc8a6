//! From stored notices to domain commands, after the endpoint has answered.
//!
//! [`plan`] is pure: it says which commands a notice maps to, or why it maps to none.
//! [`process_pending`] takes the inbox's pending rows in arrival order and executes their
//! plans through the engine's command services. Every command carries an idempotency key
//! derived from the notice's dedup key, so processing a notice again (two processors, a
//! crash between the append and the row update) appends nothing.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{
    AcceptTrigger, AddWay, Customer, CustomerCommand, CustomerError, RefusalReason, RemovedBy,
};
use domain::group::{GroupCommand, GroupError, Member};
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::TagLibraryCommand;
use domain::values::{ExternalUserId, GroupId, StaffId, TagGroupId, TagId, TenantId};
use uuid::Uuid;

use crate::app::Engine;
use crate::commands::{Actor, CommandError, CommandMeta, MembershipError};

use super::inbox::{self, InboxError, PendingNotice, Status};
use super::notice::{ChatUpdate, Notice, NoticeKind, TagType, TransferFailReason};

/// Pending notices one call takes; the rest wait for the next call.
const NOTICES_PER_CALL: i64 = 500;

/// One command (or two-stream step) a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Customer {
        customer: ExternalUserId,
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
    Tags(TagLibraryCommand),
}

/// What a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Commands at the notice's time.
    Steps { at: DateTime<Utc>, steps: Vec<Step> },
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
    match steps(&notice.kind) {
        Ok(steps) => Plan::Steps { at, steps },
        Err(plan) => plan,
    }
}

const THIN: &str = "the notice does not carry the new state and the engine does not call \
                    WeCom's API to read it";

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
            // The notice carries no add_way (only externalcontact/get does).
            let (staff, customer) = ids(staff_id, external_user_id)?;
            Ok(vec![Step::Customer {
                customer,
                command: CustomerCommand::AddFriend {
                    staff,
                    add_way: AddWay::UNKNOWN,
                    channel_state: state.clone(),
                },
            }])
        }
        K::ContactEdited { .. } => unhandled(&format!("edit_external_contact: {THIN}")),
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
        K::ChatCreated { .. } => unhandled(&format!(
            "change_external_chat/create: owner and name unknown; {THIN}"
        )),
        K::ChatDismissed { chat_id } => Ok(vec![Step::Group {
            group: parse(GroupId::parse(chat_id.as_str()))?,
            part: None,
            command: GroupCommand::Dismiss,
        }]),
        K::ChatUpdated {
            chat_id, update, ..
        } => chat_update(chat_id, update),
        K::TagCreated { .. } => unhandled(&format!(
            "change_external_tag/create: name and group unknown; {THIN}"
        )),
        K::TagUpdated { .. } => unhandled(&format!(
            "change_external_tag/update: new name unknown; {THIN}"
        )),
        K::TagDeleted { id, tag_type, .. } => match tag_type {
            TagType::Tag => Ok(vec![Step::Tags(TagLibraryCommand::DeleteTag {
                tag: parse(TagId::parse(id.as_str()))?,
            })]),
            TagType::TagGroup => Ok(vec![Step::Tags(TagLibraryCommand::DeleteGroup {
                group: parse(TagGroupId::parse(id.as_str()))?,
            })]),
            TagType::Other(other) => unhandled(&format!(
                "change_external_tag/delete: unknown TagType `{other}`"
            )),
        },
        K::TagShuffled { .. } => {
            unhandled("change_external_tag/shuffle: the tag library keeps no order")
        }
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
        ChatUpdate::ChangeOwner => {
            return unhandled(&format!(
                "change_external_chat/update/change_owner: new owner unknown; {THIN}"
            ))
        }
        ChatUpdate::ChangeName => {
            return unhandled(&format!(
                "change_external_chat/update/change_name: new name unknown; {THIN}"
            ))
        }
        ChatUpdate::ChangeNotice => {
            return unhandled(&format!(
                "change_external_chat/update/change_notice: new notice unknown; {THIN}"
            ))
        }
        ChatUpdate::Other(other) => {
            return unhandled(&format!(
                "change_external_chat/update: unknown UpdateDetail `{other}`"
            ))
        }
    };
    if member_ids.is_empty() {
        return unhandled(&format!(
            "change_external_chat/update: no MemChangeList; {THIN}"
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

/// What one call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processed {
    pub processed: usize,
    pub unhandled: usize,
    pub failed: usize,
}

/// Turns pending notices into commands and concludes their rows. A store error stops
/// the call and leaves the notice pending for the next one.
pub async fn process_pending(engine: &Engine, now: DateTime<Utc>) -> Result<Processed, InboxError> {
    let _serial = PROCESSING.lock().await;
    let mut done = Processed::default();
    for row in inbox::pending(&engine.db, NOTICES_PER_CALL).await? {
        let (status, error) = process_one(engine, &row).await?;
        match status {
            Status::Processed => done.processed += 1,
            Status::Unhandled => done.unhandled += 1,
            _ => done.failed += 1,
        }
        if let Some(error) = &error {
            tracing::info!(tenant = %row.tenant_id, kind = %row.kind, status = status.as_str(),
                %error, "wecom notice not applied");
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
    Ok(done)
}

async fn process_one(
    engine: &Engine,
    row: &PendingNotice,
) -> Result<(Status, Option<String>), InboxError> {
    let tenant = match TenantId::parse(row.tenant_id.as_str()) {
        Ok(t) => t,
        Err(e) => return Ok((Status::Failed, Some(format!("INVALID_TENANT: {e}")))),
    };
    let notice = match Notice::parse(row.payload.as_bytes()) {
        Ok(n) => n,
        Err(e) => return Ok((Status::Failed, Some(format!("UNPARSABLE: {e}")))),
    };
    let (at, steps) = match plan(&notice) {
        Plan::Steps { at, steps } => (at, steps),
        Plan::Unhandled(reason) => return Ok((Status::Unhandled, Some(reason))),
        Plan::Invalid(reason) => return Ok((Status::Failed, Some(format!("INVALID: {reason}")))),
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
        Ok((Status::Processed, None))
    } else {
        Ok((Status::Failed, Some(rejections.join("; "))))
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
    match step {
        Step::Customer { customer, command } => {
            let stream = stream_id(tenant, customer.as_str());
            match engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(key.to_owned()))
                .await
            {
                Ok(_) => Ok(StepResult::Done),
                Err(e) => rejected(e, CustomerError::code),
            }
        }
        Step::TransferCompleted { customer, staff } => {
            let stream = stream_id(tenant, customer.as_str());
            if inbox::key_used(&engine.db, Customer::TYPE, &stream, key).await? {
                return Ok(StepResult::Done);
            }
            let (state, _) = engine
                .customers
                .load(&stream)
                .await
                .map_err(|e| InboxError::Commands(e.to_string()))?;
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
            match engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(key.to_owned()))
                .await
            {
                Ok(_) => Ok(StepResult::Done),
                Err(e) => rejected(e, CustomerError::code),
            }
        }
        Step::TransferFailed {
            customer,
            staff,
            reason,
        } => {
            let stream = stream_id(tenant, customer.as_str());
            if inbox::key_used(&engine.db, Customer::TYPE, &stream, key).await? {
                return Ok(StepResult::Done);
            }
            let (state, _) = engine
                .customers
                .load(&stream)
                .await
                .map_err(|e| InboxError::Commands(e.to_string()))?;
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
            match engine
                .customers
                .execute(&stream, Stamped::new(at, command), &keyed(key.to_owned()))
                .await
            {
                Ok(_) => Ok(StepResult::Done),
                Err(e) => rejected(e, CustomerError::code),
            }
        }
        Step::Join {
            group,
            customer,
            scene,
        } => match engine
            .membership()
            .join(
                tenant,
                &group,
                &customer,
                scene,
                at,
                &keyed(format!("{key}:{customer}")),
            )
            .await
        {
            Ok(()) => Ok(StepResult::Done),
            Err(e) => membership(e),
        },
        Step::Leave {
            group,
            customer,
            scene,
        } => match engine
            .membership()
            .leave(
                tenant,
                &group,
                &customer,
                scene,
                at,
                &keyed(format!("{key}:{customer}")),
            )
            .await
        {
            Ok(()) => Ok(StepResult::Done),
            Err(e) => membership(e),
        },
        Step::Group {
            group,
            part,
            command,
        } => {
            let k = match part {
                Some(part) => format!("{key}:{part}"),
                None => key.to_owned(),
            };
            match engine
                .groups
                .execute(
                    &stream_id(tenant, group.as_str()),
                    Stamped::new(at, command),
                    &keyed(k),
                )
                .await
            {
                Ok(_) => Ok(StepResult::Done),
                Err(e) => rejected(e, GroupError::code),
            }
        }
        Step::Tags(command) => match engine
            .tags
            .execute(
                &stream_id(tenant, TAG_LIBRARY_LOCAL_ID),
                Stamped::new(at, command),
                &keyed(key.to_owned()),
            )
            .await
        {
            Ok(_) => Ok(StepResult::Done),
            Err(e) => rejected(e, domain::tags::TagLibraryError::code),
        },
    }
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
    fn thin_notices_without_the_new_state_are_unhandled() {
        assert!(matches!(
            plan(&contact("edit_external_contact", "")),
            Plan::Unhandled(_)
        ));
        let chat = |change: &str, extra: &str| {
            notice(&format!(
                "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
                 <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
                 <Event>change_external_chat</Event><ChatId>wrX</ChatId>\
                 <ChangeType>{change}</ChangeType>{extra}</xml>"
            ))
        };
        assert!(matches!(plan(&chat("create", "")), Plan::Unhandled(_)));
        for detail in ["change_owner", "change_name", "change_notice", "new_thing"] {
            let n = chat("update", &format!("<UpdateDetail>{detail}</UpdateDetail>"));
            assert!(matches!(plan(&n), Plan::Unhandled(_)), "{detail}");
        }
        assert!(matches!(
            &steps_of(plan(&chat("dismiss", "")))[..],
            [Step::Group {
                command: GroupCommand::Dismiss,
                ..
            }]
        ));
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
