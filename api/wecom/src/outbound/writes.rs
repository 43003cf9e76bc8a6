//! A guide's edits written back to WeCom: `mark_tag` and `remark` calls, what happens
//! when WeCom refuses one (the edit is undone in the log, the call keeps WeCom's
//! reason), and how the notice WeCom sends about a customer leaves an edit of ours
//! that is still on its way alone.

use domain::customer::{CustomerCommand, CustomerEvent, TagState};
use domain::stamp::{stream_id, Stamped};
use domain::values::{StaffId, TagId, TenantId};
use engine::app::Engine;
use engine::commands::{Actor, CommandError, CommandMeta};
use engine::outbox::DueCall;
use engine::wecom_writes::{MARK_TAG, REMARK};
use serde_json::Value;
use uuid::Uuid;

use super::OutboundError;
use crate::process::Step;

/// The commands that take back the edit `call` wrote, once WeCom refused it: a tag
/// added is removed, a tag removed is added back, a remark returns to the one before
/// it (`history` is the customer's stream), unless a later remark of the same guide
/// replaced it already. Pure.
pub fn undo(call: &DueCall, history: &[CustomerEvent]) -> Vec<CustomerCommand> {
    let r = &call.request;
    let Ok(staff) = StaffId::parse(r["userid"].as_str().unwrap_or_default()) else {
        return Vec::new();
    };
    let tags = |field| {
        super::answers::ids(r, field)
            .into_iter()
            .filter_map(|t| TagId::parse(t).ok())
            .collect::<Vec<_>>()
    };
    match call.api.as_str() {
        MARK_TAG => {
            let mut commands: Vec<CustomerCommand> = tags("add_tag")
                .into_iter()
                .map(|tag| CustomerCommand::Untag {
                    staff: staff.clone(),
                    tag,
                })
                .collect();
            commands.extend(
                tags("remove_tag")
                    .into_iter()
                    .map(|tag| CustomerCommand::Tag {
                        staff: staff.clone(),
                        tag,
                        tag_state: TagState::Unknown,
                    }),
            );
            commands
        }
        REMARK => {
            let remarks: Vec<(&str, &str)> = history
                .iter()
                .filter_map(|e| match e {
                    CustomerEvent::RemarkChanged {
                        staff: s,
                        remark,
                        description,
                        ..
                    } if *s == staff => Some((remark.as_str(), description.as_str())),
                    _ => None,
                })
                .collect();
            let ours = (
                r["remark"].as_str().unwrap_or_default(),
                r["description"].as_str().unwrap_or_default(),
            );
            match remarks.split_last() {
                Some((last, before)) if *last == ours => {
                    let (remark, description) = before.last().copied().unwrap_or(("", ""));
                    vec![CustomerCommand::ChangeRemark {
                        staff,
                        remark: remark.to_string(),
                        description: description.to_string(),
                    }]
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// Takes back a refused edit in the log, as the WeCom integration, keyed by the call.
pub async fn take_back(
    engine: &Engine,
    tenant: &TenantId,
    call: &DueCall,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), OutboundError> {
    let Some(customer) = call.subject.as_deref() else {
        return Ok(());
    };
    let stream = stream_id(tenant, customer);
    let history = engine
        .customers
        .history(&stream)
        .await
        .map_err(|e| OutboundError::Command(e.to_string()))?;
    for (n, command) in undo(call, &history).into_iter().enumerate() {
        let meta = CommandMeta::new(
            tenant.clone(),
            Actor::integration("wecom"),
            Uuid::new_v5(&Uuid::NAMESPACE_OID, call.call_id.as_bytes()),
        )
        .with_idempotency_key(format!("wecom-undo:{}:{n}", call.call_id));
        match engine
            .customers
            .execute(&stream, Stamped::new(now, command), &meta)
            .await
        {
            // Already as it was (the customer left, the tag went another way).
            Ok(_) | Err(CommandError::Rejected(_)) => {}
            Err(e) => return Err(OutboundError::Command(e.to_string())),
        }
    }
    Ok(())
}

/// `steps` less those that would undo an edit of ours WeCom has not answered yet
/// (`pending`: the customer's unanswered calls). WeCom's state lags our write until the
/// call is answered; once it is, WeCom's state equals the log's and the notice's steps
/// change nothing, so an edit is neither undone nor recorded twice. Pure.
pub fn echo_safe(steps: Vec<Step>, pending: &[(String, Value)]) -> Vec<Step> {
    let pending_tag = |staff: &StaffId, tag: &TagId, field: &str| {
        pending.iter().any(|(api, r)| {
            api == MARK_TAG
                && r["userid"] == staff.as_str()
                && super::answers::ids(r, field)
                    .iter()
                    .any(|t| t == tag.as_str())
        })
    };
    let pending_remark = |staff: &StaffId| {
        pending
            .iter()
            .any(|(api, r)| api == REMARK && r["userid"] == staff.as_str())
    };
    steps
        .into_iter()
        .filter(|step| match step {
            Step::Customer { command, .. } => match command {
                // WeCom does not show our removal yet.
                CustomerCommand::Tag { staff, tag, .. } => !pending_tag(staff, tag, "remove_tag"),
                // WeCom does not show our tag yet.
                CustomerCommand::Untag { staff, tag } => !pending_tag(staff, tag, "add_tag"),
                CustomerCommand::ChangeRemark { staff, .. } => !pending_remark(staff),
                _ => true,
            },
            _ => true,
        })
        .collect()
}

/// The customers `steps` edit (tags, remarks): the ones whose unanswered calls matter.
pub fn edited(steps: &[Step]) -> Vec<String> {
    let mut customers: Vec<String> = steps
        .iter()
        .filter_map(|step| match step {
            Step::Customer {
                customer,
                command:
                    CustomerCommand::Tag { .. }
                    | CustomerCommand::Untag { .. }
                    | CustomerCommand::ChangeRemark { .. },
                ..
            } => Some(customer.to_string()),
            _ => None,
        })
        .collect();
    customers.sort();
    customers.dedup();
    customers
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use domain::values::ExternalUserId;
    use engine::outbox::CallStatus;
    use serde_json::json;

    fn call(api: &str, request: Value) -> DueCall {
        DueCall {
            tenant: "acme".into(),
            call_id: "c1".into(),
            api: api.into(),
            subject: Some("wmA".into()),
            request,
            status: CallStatus::Sending,
            attempts: 1,
        }
    }

    fn staff() -> StaffId {
        StaffId::parse("zhangsan").unwrap()
    }

    fn tag(t: &str) -> TagId {
        TagId::parse(t).unwrap()
    }

    fn remark(text: &str) -> CustomerEvent {
        CustomerEvent::RemarkChanged {
            staff: staff(),
            remark: text.into(),
            description: String::new(),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_refused_tag_is_removed_and_a_refused_removal_put_back() {
        let c = call(
            MARK_TAG,
            json!({"userid": "zhangsan", "external_userid": "wmA",
                   "add_tag": ["etGold"], "remove_tag": ["etOld"]}),
        );
        assert_eq!(
            undo(&c, &[]),
            vec![
                CustomerCommand::Untag {
                    staff: staff(),
                    tag: tag("etGold")
                },
                CustomerCommand::Tag {
                    staff: staff(),
                    tag: tag("etOld"),
                    tag_state: TagState::Unknown
                },
            ]
        );
    }

    #[test]
    fn a_refused_remark_returns_to_the_one_before_unless_replaced_since() {
        let c = call(
            REMARK,
            json!({"userid": "zhangsan", "external_userid": "wmA",
                   "remark": "王女士", "description": ""}),
        );
        // Given "李女士" then ours: back to "李女士".
        assert_eq!(
            undo(&c, &[remark("李女士"), remark("王女士")]),
            vec![CustomerCommand::ChangeRemark {
                staff: staff(),
                remark: "李女士".into(),
                description: String::new()
            }]
        );
        // Given ours as the first: back to none.
        assert_eq!(
            undo(&c, &[remark("王女士")]),
            vec![CustomerCommand::ChangeRemark {
                staff: staff(),
                remark: String::new(),
                description: String::new()
            }]
        );
        // Given a later remark over ours: nothing to take back.
        assert!(undo(&c, &[remark("王女士"), remark("张女士")]).is_empty());
    }

    #[test]
    fn a_notice_does_not_undo_an_edit_still_on_its_way() {
        let customer = ExternalUserId::parse("wmA").unwrap();
        let step = |command| Step::Customer {
            customer: customer.clone(),
            part: None,
            command,
        };
        // WeCom's state (read for the notice) lacks our new tag and still has the remark
        // we replaced.
        let steps = vec![
            step(CustomerCommand::Untag {
                staff: staff(),
                tag: tag("etGold"),
            }),
            step(CustomerCommand::ChangeRemark {
                staff: staff(),
                remark: "old".into(),
                description: String::new(),
            }),
            step(CustomerCommand::Untag {
                staff: staff(),
                tag: tag("etOther"),
            }),
        ];
        let pending = vec![
            (
                MARK_TAG.to_string(),
                json!({"userid": "zhangsan", "add_tag": ["etGold"]}),
            ),
            (
                REMARK.to_string(),
                json!({"userid": "zhangsan", "remark": "new"}),
            ),
        ];
        assert_eq!(edited(&steps), vec!["wmA".to_string()]);
        // Only the change that is WeCom's own goes through.
        assert_eq!(
            echo_safe(steps, &pending),
            vec![step(CustomerCommand::Untag {
                staff: staff(),
                tag: tag("etOther")
            })]
        );
    }
}
