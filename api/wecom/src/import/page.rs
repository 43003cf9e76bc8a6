//! A page of WeCom's answers as commands. Pure: no clock (the fallback instant comes
//! in), no I/O.

use chrono::{DateTime, Utc};
use domain::customer::{AddWay, ImportedRelation, Profile, TagState};
use domain::tags::TagLibrary;
use domain::values::{ExternalUserId, StaffId, TagId};

use crate::client::{ChatMember, GroupChat, ImportedContact};
use crate::process::Step;

/// One relation of a page, ready to execute on its customer's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub customer: ExternalUserId,
    /// The relation's `createtime`.
    pub at: DateTime<Utc>,
    pub relation: ImportedRelation,
}

impl Planned {
    /// The key every run of every import uses for this relation: the stream is the
    /// customer's, so (customer, staff, fact) names it once and for all.
    pub fn idempotency_key(&self) -> String {
        format!("wecom-import:relation:{}", self.relation.staff)
    }
}

/// A WeCom timestamp in seconds, or `fallback` when WeCom gives none.
pub fn instant(seconds: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    if seconds <= 0 {
        return fallback;
    }
    DateTime::from_timestamp(seconds, 0).unwrap_or(fallback)
}

/// The relation WeCom lists, as the domain takes it; `Err` names an id the domain
/// refuses. Tags the library does not hold as active (a rule-group tag, one deleted
/// since) are left out. `fallback` stamps a relation without `createtime`.
pub fn planned(
    contact: &ImportedContact,
    library: &TagLibrary,
    fallback: DateTime<Utc>,
) -> Result<Planned, String> {
    let person = &contact.external_contact;
    let follow = &contact.follow_info;
    let customer = ExternalUserId::parse(person.external_userid.as_str())
        .map_err(|e| format!("external_userid {:?}: {e}", person.external_userid))?;
    let staff = StaffId::parse(follow.userid.as_str())
        .map_err(|e| format!("userid {:?}: {e}", follow.userid))?;
    let tags = follow
        .tag_id
        .iter()
        .filter_map(|id| TagId::parse(id.as_str()).ok())
        .filter(|tag| library.tag_state(tag) == TagState::Active)
        .collect();
    let profile = Profile {
        name: person.name.clone(),
        gender: u8::try_from(person.gender).ok().filter(|g| *g != 0),
        avatar: Some(person.avatar.clone()).filter(|a| !a.is_empty()),
    };
    Ok(Planned {
        customer,
        at: instant(follow.createtime, fallback),
        relation: ImportedRelation {
            staff,
            add_way: follow
                .add_way
                .and_then(|w| u16::try_from(w).ok())
                .map_or(AddWay::UNKNOWN, AddWay),
            channel_state: follow.state.clone().filter(|s| !s.is_empty()),
            profile: Some(profile),
            remark: follow.remark.clone(),
            description: follow.description.clone(),
            tags,
        },
    })
}

/// `items` in rounds within which no two share a customer: a batch decides every
/// command on its stream as loaded, so a customer listed by two staff on one page
/// goes in two rounds. Order within a customer is kept.
pub fn rounds(items: Vec<Planned>) -> Vec<Vec<Planned>> {
    let mut rounds: Vec<Vec<Planned>> = Vec::new();
    for item in items {
        let free = rounds
            .iter()
            .position(|r| r.iter().all(|p| p.customer != item.customer));
        match free {
            Some(i) => rounds[i].push(item),
            None => rounds.push(vec![item]),
        }
    }
    rounds
}

/// When a group step happened as WeCom tells it: a member's joining at their
/// `join_time`, the group itself at its `create_time`.
pub fn step_time(step: &Step, chat: &GroupChat, fallback: DateTime<Utc>) -> DateTime<Utc> {
    let joined = |userid: &str, kind: i64| {
        chat.member_list
            .iter()
            .find(|m| m.userid == userid && m.kind == kind)
            .map(|m| instant(m.join_time, fallback))
    };
    let created = instant(chat.create_time, fallback);
    match step {
        Step::Join { customer, .. } => joined(customer.as_str(), ChatMember::EXTERNAL),
        Step::Group {
            part: Some(part), ..
        } => part
            .strip_prefix("admit:")
            .and_then(|userid| joined(userid, ChatMember::STAFF)),
        _ => None,
    }
    .unwrap_or(created)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::group::GroupCommand;
    use domain::tags::TagLibraryEvent;
    use domain::values::{GroupId, TagGroupId};

    use super::*;
    use crate::client::{ExternalContact, FollowInfo};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    }

    fn contact(customer: &str, staff: &str, createtime: i64, tags: &[&str]) -> ImportedContact {
        ImportedContact {
            external_contact: ExternalContact {
                external_userid: customer.into(),
                name: "李四".into(),
                kind: 1,
                gender: 1,
                avatar: String::new(),
            },
            follow_info: FollowInfo {
                userid: staff.into(),
                remark: "李部长".into(),
                description: String::new(),
                createtime,
                tag_id: tags.iter().map(|t| t.to_string()).collect(),
                add_way: Some(3),
                state: Some("外联二维码1".into()),
            },
        }
    }

    fn library_with(tag: &str) -> TagLibrary {
        let mut library = TagLibrary::default();
        let group = TagGroupId::parse("g1").unwrap();
        for event in [
            TagLibraryEvent::TagGroupCreated {
                group: group.clone(),
                name: "Tier".into(),
                at: now(),
            },
            TagLibraryEvent::TagCreated {
                tag: TagId::parse(tag).unwrap(),
                group,
                name: "Gold".into(),
                at: now(),
            },
        ] {
            cqrs_es::Aggregate::apply(&mut library, event);
        }
        library
    }

    #[test]
    fn a_listed_relation_keeps_wecoms_time_way_channel_and_only_active_library_tags() {
        let library = library_with("etGOLD");
        let p = planned(
            &contact("wmA", "rocky", 1525779812, &["etGOLD", "stRULE"]),
            &library,
            now(),
        )
        .unwrap();
        assert_eq!(p.at, Utc.timestamp_opt(1525779812, 0).unwrap());
        assert_eq!(p.relation.add_way, AddWay::BUSINESS_CARD);
        assert_eq!(p.relation.channel_state.as_deref(), Some("外联二维码1"));
        assert_eq!(p.relation.tags, [TagId::parse("etGOLD").unwrap()]);
        let profile = p.relation.profile.clone().unwrap();
        assert_eq!((profile.name.as_str(), profile.gender), ("李四", Some(1)));
        assert_eq!(p.idempotency_key(), "wecom-import:relation:rocky");
    }

    #[test]
    fn a_relation_without_createtime_is_stamped_with_the_fallback() {
        let p = planned(
            &contact("wmA", "rocky", 0, &[]),
            &TagLibrary::default(),
            now(),
        );
        assert_eq!(p.unwrap().at, now());
    }

    #[test]
    fn an_id_the_domain_refuses_is_reported_not_planned() {
        let bad = planned(
            &contact("wm:A", "rocky", 1, &[]),
            &TagLibrary::default(),
            now(),
        );
        assert!(bad.unwrap_err().contains("external_userid"));
    }

    #[test]
    fn a_customer_listed_twice_on_a_page_goes_in_two_rounds() {
        let library = TagLibrary::default();
        let page = [("wmA", "s1"), ("wmB", "s1"), ("wmA", "s2"), ("wmA", "s3")]
            .map(|(c, s)| planned(&contact(c, s, 1, &[]), &library, now()).unwrap());
        let rounds = rounds(page.to_vec());
        let shape: Vec<Vec<(&str, &str)>> = rounds
            .iter()
            .map(|r| {
                r.iter()
                    .map(|p| (p.customer.as_str(), p.relation.staff.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![("wmA", "s1"), ("wmB", "s1")],
                vec![("wmA", "s2")],
                vec![("wmA", "s3")]
            ]
        );
    }

    #[test]
    fn group_steps_are_stamped_with_the_groups_and_members_own_times() {
        let chat = GroupChat {
            chat_id: "wr1".into(),
            name: "VIP".into(),
            owner: "abel".into(),
            create_time: 1572505490,
            notice: String::new(),
            member_list: vec![
                ChatMember {
                    userid: "jack".into(),
                    kind: ChatMember::STAFF,
                    join_time: 1572505491,
                    join_scene: 1,
                },
                ChatMember {
                    userid: "wmA".into(),
                    kind: ChatMember::EXTERNAL,
                    join_time: 1572505999,
                    join_scene: 3,
                },
            ],
        };
        let group = GroupId::parse("wr1").unwrap();
        let create = Step::Group {
            group: group.clone(),
            part: Some("create".into()),
            command: GroupCommand::Rename { name: "x".into() },
        };
        let admit = Step::Group {
            group: group.clone(),
            part: Some("admit:jack".into()),
            command: GroupCommand::Rename { name: "x".into() },
        };
        let join = Step::Join {
            group,
            customer: ExternalUserId::parse("wmA").unwrap(),
            scene: 3,
        };
        let at = |s: &Step| step_time(s, &chat, now()).timestamp();
        assert_eq!(
            (at(&create), at(&admit), at(&join)),
            (1572505490, 1572505491, 1572505999)
        );
    }
}
