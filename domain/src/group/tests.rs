use super::*;

use chrono::{Duration, TimeZone};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use crate::rules;

use GroupCommand as C;
use GroupEvent as E;

// ---------------------------------------------------------------- helpers

/// 2026-03-`day` `hour`:00:00 UTC.
fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

const OWNER: &str = "zhangsan";
const LI: &str = "lisi";
const WANG: &str = "wangwu";

fn staff(s: &str) -> StaffId {
    StaffId::parse(s).unwrap()
}

fn customer(n: usize) -> Member {
    Member::Customer(ExternalUserId::parse(format!("wo{n}")).unwrap())
}

fn staff_member(s: &str) -> Member {
    Member::Staff(staff(s))
}

fn given(events: Vec<GroupEvent>) -> AggregateTestExecutor<CustomerGroup> {
    TestFramework::<CustomerGroup>::with(()).given(events)
}

fn created(capacity: u32) -> GroupEvent {
    E::GroupCreated {
        owner: staff(OWNER),
        name: "周大福VIP群".to_string(),
        capacity,
        at: t(1, 9),
    }
}

fn admitted(member: Member, at: DateTime<Utc>) -> GroupEvent {
    E::MemberAdmitted {
        member,
        join_scene: 1,
        at,
    }
}

/// A group of `capacity` with the owner and `customers` customers in it.
fn group_with(capacity: u32, customers: usize) -> Vec<GroupEvent> {
    let mut events = vec![created(capacity)];
    events.extend((0..customers).map(|n| admitted(customer(n), t(1, 10))));
    events
}

fn admit(member: Member) -> C {
    C::Admit {
        member,
        join_scene: 1,
    }
}

fn transferred(from: &str, to: &str, at: DateTime<Utc>) -> GroupEvent {
    E::OwnershipTransferred {
        from: staff(from),
        to: staff(to),
        previous_owner_left: false,
        at,
    }
}

fn create(capacity: u32) -> C {
    C::Create {
        owner: staff(OWNER),
        name: "周大福VIP群".to_string(),
        capacity,
    }
}

// ---------------------------------------------------------------- creation

#[test]
fn a_group_is_created_with_its_owner_and_capacity() {
    given(vec![])
        .when(Stamped::new(t(1, 9), create(rules::DEFAULT_GROUP_CAPACITY)))
        .then_expect_events(vec![created(rules::DEFAULT_GROUP_CAPACITY)]);
}

#[test]
fn a_group_of_capacity_zero_is_rejected() {
    given(vec![])
        .when(Stamped::new(t(1, 9), create(0)))
        .then_expect_error(GroupError::InvalidCapacity {
            got: 0,
            max: rules::MAX_GROUP_CAPACITY,
        });
}

#[test]
fn a_group_of_capacity_one_is_accepted() {
    given(vec![])
        .when(Stamped::new(t(1, 9), create(1)))
        .then_expect_events(vec![created(1)]);
}

#[test]
fn a_group_of_the_maximum_capacity_is_accepted() {
    given(vec![])
        .when(Stamped::new(t(1, 9), create(rules::MAX_GROUP_CAPACITY)))
        .then_expect_events(vec![created(rules::MAX_GROUP_CAPACITY)]);
}

#[test]
fn a_group_above_the_maximum_capacity_is_rejected() {
    given(vec![])
        .when(Stamped::new(t(1, 9), create(rules::MAX_GROUP_CAPACITY + 1)))
        .then_expect_error(GroupError::InvalidCapacity {
            got: rules::MAX_GROUP_CAPACITY + 1,
            max: rules::MAX_GROUP_CAPACITY,
        });
}

#[test]
fn a_group_cannot_be_created_twice() {
    given(vec![created(500)])
        .when(Stamped::new(t(2, 9), create(500)))
        .then_expect_error(GroupError::AlreadyCreated);
}

#[test]
fn a_group_name_of_30_characters_is_accepted() {
    let name = "群".repeat(30);
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::Create {
                owner: staff(OWNER),
                name: name.clone(),
                capacity: 500,
            },
        ))
        .then_expect_events(vec![E::GroupCreated {
            owner: staff(OWNER),
            name,
            capacity: 500,
            at: t(1, 9),
        }]);
}

#[test]
fn a_group_name_of_31_characters_is_rejected() {
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::Create {
                owner: staff(OWNER),
                name: "群".repeat(31),
                capacity: 500,
            },
        ))
        .then_expect_error(GroupError::TextTooLong {
            field: "name",
            chars: 31,
            max: 30,
        });
}

#[test]
fn a_group_cannot_be_renamed_to_31_characters() {
    given(vec![created(500)])
        .when(Stamped::new(
            t(2, 9),
            C::Rename {
                name: "群".repeat(31),
            },
        ))
        .then_expect_error(GroupError::TextTooLong {
            field: "name",
            chars: 31,
            max: 30,
        });
}

#[test]
fn commands_on_a_group_never_created_are_rejected() {
    for command in [
        admit(customer(1)),
        C::Remove {
            member: customer(1),
            quit_scene: 0,
        },
        C::TransferOwnership {
            to: staff(LI),
            previous_owner_leaves: false,
        },
        C::Rename {
            name: "新群".to_string(),
        },
        C::ChangeNotice {
            notice: "欢迎".to_string(),
        },
        C::Dismiss,
    ] {
        given(vec![])
            .when(Stamped::new(t(1, 9), command))
            .then_expect_error(GroupError::UnknownGroup);
    }
}

// ---------------------------------------------------------------- capacity

#[test]
fn the_owner_counts_as_a_member() {
    given(vec![created(1)])
        .when(Stamped::new(t(1, 10), admit(customer(1))))
        .then_expect_error(GroupError::GroupFull { capacity: 1 });
}

#[test]
fn the_owner_cannot_be_admitted_again() {
    given(vec![created(500)])
        .when(Stamped::new(t(1, 10), admit(staff_member(OWNER))))
        .then_expect_error(GroupError::AlreadyMember);
}

#[test]
fn a_group_of_3_admits_its_third_member() {
    // Owner + 1 customer = 2 members.
    given(group_with(3, 1))
        .when(Stamped::new(t(2, 9), admit(customer(7))))
        .then_expect_events(vec![admitted(customer(7), t(2, 9))]);
}

#[test]
fn a_group_of_3_with_3_members_is_full() {
    // Owner + 2 customers = 3 members.
    given(group_with(3, 2))
        .when(Stamped::new(t(2, 9), admit(customer(7))))
        .then_expect_error(GroupError::GroupFull { capacity: 3 });
}

#[test]
fn a_default_group_admits_its_500th_member() {
    // Owner + 498 customers = 499 members.
    given(group_with(rules::DEFAULT_GROUP_CAPACITY, 498))
        .when(Stamped::new(t(2, 9), admit(customer(9_999))))
        .then_expect_events(vec![admitted(customer(9_999), t(2, 9))]);
}

#[test]
fn a_default_group_with_500_members_is_full() {
    // Owner + 499 customers = 500 members.
    given(group_with(rules::DEFAULT_GROUP_CAPACITY, 499))
        .when(Stamped::new(t(2, 9), admit(customer(9_999))))
        .then_expect_error(GroupError::GroupFull { capacity: 500 });
}

#[test]
fn a_full_group_admits_again_after_a_member_leaves() {
    let mut events = group_with(3, 2);
    events.push(E::MemberRemoved {
        member: customer(0),
        quit_scene: 0,
        at: t(2, 9),
    });
    given(events)
        .when(Stamped::new(t(2, 10), admit(customer(7))))
        .then_expect_events(vec![admitted(customer(7), t(2, 10))]);
}

#[test]
fn staff_members_count_towards_the_capacity() {
    let mut events = group_with(3, 1);
    events.push(admitted(staff_member(LI), t(1, 11)));
    given(events)
        .when(Stamped::new(t(2, 9), admit(customer(7))))
        .then_expect_error(GroupError::GroupFull { capacity: 3 });
}

// ---------------------------------------------------------------- membership

#[test]
fn a_member_cannot_be_admitted_twice() {
    given(group_with(500, 2))
        .when(Stamped::new(t(2, 9), admit(customer(1))))
        .then_expect_error(GroupError::AlreadyMember);
}

#[test]
fn a_member_can_leave() {
    given(group_with(500, 2))
        .when(Stamped::new(
            t(2, 9),
            C::Remove {
                member: customer(1),
                quit_scene: 0,
            },
        ))
        .then_expect_events(vec![E::MemberRemoved {
            member: customer(1),
            quit_scene: 0,
            at: t(2, 9),
        }]);
}

#[test]
fn a_non_member_cannot_be_removed() {
    given(group_with(500, 2))
        .when(Stamped::new(
            t(2, 9),
            C::Remove {
                member: customer(5),
                quit_scene: 0,
            },
        ))
        .then_expect_error(GroupError::NotMember);
}

#[test]
fn the_owner_cannot_leave() {
    given(group_with(500, 2))
        .when(Stamped::new(
            t(2, 9),
            C::Remove {
                member: staff_member(OWNER),
                quit_scene: 0,
            },
        ))
        .then_expect_error(GroupError::OwnerCannotLeave);
}

#[test]
fn a_former_owner_can_leave_after_transferring_the_group() {
    let mut events = group_with(500, 2);
    events.push(transferred(OWNER, LI, t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::Remove {
                member: staff_member(OWNER),
                quit_scene: 0,
            },
        ))
        .then_expect_events(vec![E::MemberRemoved {
            member: staff_member(OWNER),
            quit_scene: 0,
            at: t(2, 10),
        }]);
}

#[test]
fn the_new_owner_cannot_leave_after_a_transfer() {
    let mut events = group_with(500, 2);
    events.push(transferred(OWNER, LI, t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::Remove {
                member: staff_member(LI),
                quit_scene: 0,
            },
        ))
        .then_expect_error(GroupError::OwnerCannotLeave);
}

// ---------------------------------------------------------------- ownership transfer

#[test]
fn ownership_is_transferred_to_another_staff() {
    given(group_with(500, 2))
        .when(Stamped::new(
            t(2, 9),
            C::TransferOwnership {
                to: staff(LI),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_events(vec![transferred(OWNER, LI, t(2, 9))]);
}

#[test]
fn ownership_cannot_be_transferred_to_the_current_owner() {
    given(group_with(500, 2))
        .when(Stamped::new(
            t(2, 9),
            C::TransferOwnership {
                to: staff(OWNER),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_error(GroupError::SameOwner);
}

#[test]
fn a_second_transfer_within_90_days_is_allowed() {
    let mut events = group_with(500, 2);
    events.push(transferred(OWNER, LI, t(1, 10)));
    given(events)
        .when(Stamped::new(
            t(5, 10),
            C::TransferOwnership {
                to: staff(WANG),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_events(vec![transferred(LI, WANG, t(5, 10))]);
}

#[test]
fn a_third_transfer_within_90_days_of_the_first_is_rejected() {
    let first = t(1, 10);
    let mut events = group_with(500, 2);
    events.push(transferred(OWNER, LI, first));
    events.push(transferred(LI, WANG, t(20, 10)));
    given(events)
        .when(Stamped::new(
            first + Duration::days(90) - Duration::seconds(1),
            C::TransferOwnership {
                to: staff(OWNER),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_error(GroupError::TransferLimitReached);
}

#[test]
fn a_third_transfer_90_days_after_the_first_is_allowed() {
    let first = t(1, 10);
    let third = first + Duration::days(90);
    let mut events = group_with(500, 2);
    events.push(transferred(OWNER, LI, first));
    events.push(transferred(LI, WANG, t(20, 10)));
    given(events)
        .when(Stamped::new(
            third,
            C::TransferOwnership {
                to: staff(OWNER),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_events(vec![transferred(WANG, OWNER, third)]);
}

#[test]
fn a_full_group_cannot_be_transferred_to_a_staff_outside_it() {
    given(group_with(3, 2))
        .when(Stamped::new(
            t(2, 9),
            C::TransferOwnership {
                to: staff(LI),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_error(GroupError::GroupFull { capacity: 3 });
}

#[test]
fn a_full_group_can_be_transferred_to_a_staff_already_in_it() {
    let mut events = group_with(3, 1);
    events.push(admitted(staff_member(LI), t(1, 11)));
    given(events)
        .when(Stamped::new(
            t(2, 9),
            C::TransferOwnership {
                to: staff(LI),
                previous_owner_leaves: false,
            },
        ))
        .then_expect_events(vec![transferred(OWNER, LI, t(2, 9))]);
}

#[test]
fn the_new_owner_joins_the_group_on_transfer() {
    // Owner + 1 customer; the transfer to Li fills the group of 3.
    let mut events = group_with(3, 1);
    events.push(transferred(OWNER, LI, t(2, 9)));
    given(events)
        .when(Stamped::new(t(2, 10), admit(customer(7))))
        .then_expect_error(GroupError::GroupFull { capacity: 3 });
}

// ---------------------------------------------------------------- rename, notice, dismiss

#[test]
fn a_group_can_be_renamed_and_its_notice_changed() {
    given(group_with(500, 1))
        .when(Stamped::new(
            t(2, 9),
            C::Rename {
                name: "周大福会员群".to_string(),
            },
        ))
        .then_expect_events(vec![E::GroupRenamed {
            name: "周大福会员群".to_string(),
            at: t(2, 9),
        }]);
    given(group_with(500, 1))
        .when(Stamped::new(
            t(2, 9),
            C::ChangeNotice {
                notice: "本周末金饰九折".to_string(),
            },
        ))
        .then_expect_events(vec![E::NoticeChanged {
            notice: "本周末金饰九折".to_string(),
            at: t(2, 9),
        }]);
}

#[test]
fn the_group_keeps_its_current_name_and_notice() {
    let mut group = CustomerGroup::default();
    for event in group_with(500, 0) {
        group.apply(event);
    }
    assert_eq!((group.name(), group.notice()), ("周大福VIP群", ""));
    group.apply(E::GroupRenamed {
        name: "会员群".to_string(),
        at: t(2, 9),
    });
    group.apply(E::NoticeChanged {
        notice: "九折".to_string(),
        at: t(2, 9),
    });
    assert_eq!((group.name(), group.notice()), ("会员群", "九折"));
}

#[test]
fn a_notice_of_1001_characters_is_rejected() {
    given(group_with(500, 1))
        .when(Stamped::new(
            t(2, 9),
            C::ChangeNotice {
                notice: "金".repeat(1_001),
            },
        ))
        .then_expect_error(GroupError::TextTooLong {
            field: "notice",
            chars: 1_001,
            max: 1_000,
        });
}

#[test]
fn a_group_can_be_dismissed() {
    given(group_with(500, 2))
        .when(Stamped::new(t(2, 9), C::Dismiss))
        .then_expect_events(vec![E::GroupDismissed { at: t(2, 9) }]);
}

#[test]
fn commands_on_a_dismissed_group_are_rejected() {
    for command in [
        admit(customer(9)),
        C::Remove {
            member: customer(1),
            quit_scene: 0,
        },
        C::TransferOwnership {
            to: staff(LI),
            previous_owner_leaves: false,
        },
        C::Rename {
            name: "新群".to_string(),
        },
        C::ChangeNotice {
            notice: "欢迎".to_string(),
        },
        C::Dismiss,
    ] {
        let mut events = group_with(500, 2);
        events.push(E::GroupDismissed { at: t(2, 9) });
        given(events)
            .when(Stamped::new(t(3, 9), command))
            .then_expect_error(GroupError::Dismissed);
    }
}

#[test]
fn a_dismissed_group_cannot_be_created_again() {
    given(vec![created(500), E::GroupDismissed { at: t(2, 9) }])
        .when(Stamped::new(t(3, 9), create(500)))
        .then_expect_error(GroupError::AlreadyCreated);
}

#[test]
fn a_departed_owner_hands_a_full_group_over_by_giving_up_their_seat() {
    let full = group_with(3, 2);
    given(full.clone())
        .when(Stamped::new(
            t(2, 9),
            C::TransferOwnership {
                to: staff(LI),
                previous_owner_leaves: true,
            },
        ))
        .then_expect_events(vec![E::OwnershipTransferred {
            from: staff(OWNER),
            to: staff(LI),
            previous_owner_left: true,
            at: t(2, 9),
        }]);
    let mut group = CustomerGroup::default();
    for e in full {
        group.apply(e);
    }
    group.apply(E::OwnershipTransferred {
        from: staff(OWNER),
        to: staff(LI),
        previous_owner_left: true,
        at: t(2, 9),
    });
    assert_eq!(group.members().len(), 3);
    assert!(!group.members().contains(&Member::Staff(staff(OWNER))));
    assert_eq!(group.owner(), Some(&staff(LI)));
}
