//! A customer's relation with a staff member as WeCom's API describes it: the steps that
//! bring the engine's relation to it, and the way a friend-add came about. Pure.

use std::collections::BTreeSet;

use domain::customer::{AddWay, CustomerCommand, Relation};
use domain::tags::TagLibrary;
use domain::values::{ExternalUserId, StaffId, TagId};

use super::plan::parse;
use super::{Plan, Step};
use crate::client::{Contact, FollowTag};

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
        .find(|f| f.relation.userid == staff.as_str())
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
    if relation.is_none_or(|r| {
        r.remark != follow.relation.remark || r.description != follow.relation.description
    }) {
        steps.push(step(
            "remark".into(),
            CustomerCommand::ChangeRemark {
                staff: staff.clone(),
                remark: follow.relation.remark.clone(),
                description: follow.relation.description.clone(),
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
                    .find(|f| f.relation.userid == staff.as_str());
                let add_way = follow
                    .and_then(|f| f.relation.add_way)
                    .and_then(|w| u16::try_from(w).ok())
                    .map_or(AddWay::UNKNOWN, AddWay);
                let channel_state =
                    channel_state.or_else(|| follow.and_then(|f| f.relation.state.clone()));
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
pub(super) fn unknown_add(steps: &[Step]) -> Option<(StaffId, ExternalUserId)> {
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
