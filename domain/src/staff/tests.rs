use super::*;

use chrono::TimeZone;
use chrono_tz::Asia::Shanghai;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use StaffCommand as C;
use StaffEvent as E;

// ---------------------------------------------------------------- helpers

/// 2026-03-`day` `hour`:00:00 UTC.
fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

/// 2026-03-`day` `hour`:`minute`:`second` UTC.
fn ts(day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, second)
        .unwrap()
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
}

fn store(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}

fn group(n: usize) -> GroupId {
    GroupId::parse(format!("wr{n}")).unwrap()
}

fn given(events: Vec<StaffEvent>) -> AggregateTestExecutor<Staff> {
    TestFramework::<Staff>::with(()).given(events)
}

fn registered() -> StaffEvent {
    E::StaffRegistered {
        name: "张三".to_string(),
        store: store("shanghai-001"),
        title: "导购".to_string(),
        customer_limit: rules::DEFAULT_CUSTOMER_LIMIT,
        at: t(1, 1),
    }
}

fn register() -> C {
    C::Register {
        name: "张三".to_string(),
        store: store("shanghai-001"),
        title: "导购".to_string(),
    }
}

fn claim(n: usize) -> C {
    C::ClaimGroupTransfer {
        group: group(n),
        time_zone: Shanghai,
    }
}

fn claimed(n: usize, day: NaiveDate, at: DateTime<Utc>) -> StaffEvent {
    E::GroupTransferClaimed {
        group: group(n),
        day,
        at,
    }
}

/// A registered owner whose `count` groups were claimed early on Shanghai day 2 March:
/// one every 90 s from 1 March 16:00 UTC (300 claims end before 1 March 23:30 UTC).
fn claimed_on_shanghai_2_march(count: usize) -> Vec<StaffEvent> {
    let mut events = vec![registered()];
    events.extend((0..count).map(|n| {
        let at = t(1, 16) + chrono::Duration::seconds(n as i64 * 90);
        assert_eq!(local_day(at, Shanghai), date(2));
        claimed(n, date(2), at)
    }));
    events
}

// ---------------------------------------------------------------- registration

#[test]
fn a_staff_member_is_registered_with_the_default_customer_limit() {
    given(vec![])
        .when(Stamped::new(t(1, 1), register()))
        .then_expect_events(vec![E::StaffRegistered {
            name: "张三".to_string(),
            store: store("shanghai-001"),
            title: "导购".to_string(),
            customer_limit: 5_000,
            at: t(1, 1),
        }]);
    assert_eq!(rules::DEFAULT_CUSTOMER_LIMIT, 5_000);
}

#[test]
fn a_registered_staff_member_serves_the_default_customer_limit() {
    let mut staff = Staff::default();
    staff.apply(registered());
    assert_eq!(staff.customer_limit(), rules::DEFAULT_CUSTOMER_LIMIT);
    assert_eq!(staff.store(), Some(&store("shanghai-001")));
    assert_eq!(staff.departed_at(), None);
}

#[test]
fn a_staff_member_cannot_be_registered_twice() {
    given(vec![registered()])
        .when(Stamped::new(t(2, 1), register()))
        .then_expect_error(StaffError::AlreadyRegistered);
}

#[test]
fn a_staff_member_needs_a_name() {
    given(vec![])
        .when(Stamped::new(
            t(1, 1),
            C::Register {
                name: "  ".to_string(),
                store: store("shanghai-001"),
                title: "导购".to_string(),
            },
        ))
        .then_expect_error(StaffError::EmptyName);
}

#[test]
fn commands_on_an_unregistered_staff_member_are_rejected() {
    for command in [
        C::MoveToStore {
            store: store("beijing-001"),
        },
        C::SetCustomerLimit { limit: 10_000 },
        C::MarkDeparted,
        claim(1),
    ] {
        given(vec![])
            .when(Stamped::new(t(1, 1), command))
            .then_expect_error(StaffError::UnknownStaff);
    }
}

// ---------------------------------------------------------------- store

#[test]
fn a_staff_member_can_move_to_another_store() {
    given(vec![registered()])
        .when(Stamped::new(
            t(2, 1),
            C::MoveToStore {
                store: store("beijing-001"),
            },
        ))
        .then_expect_events(vec![E::StaffMovedToStore {
            from: store("shanghai-001"),
            to: store("beijing-001"),
            at: t(2, 1),
        }]);
}

#[test]
fn a_staff_member_cannot_move_to_their_own_store() {
    given(vec![registered()])
        .when(Stamped::new(
            t(2, 1),
            C::MoveToStore {
                store: store("shanghai-001"),
            },
        ))
        .then_expect_error(StaffError::SameStore);
}

// ---------------------------------------------------------------- customer limit

#[test]
fn the_customer_limit_can_be_expanded_to_20000() {
    given(vec![registered()])
        .when(Stamped::new(
            t(2, 1),
            C::SetCustomerLimit {
                limit: rules::MAX_CUSTOMER_LIMIT,
            },
        ))
        .then_expect_events(vec![E::CustomerLimitChanged {
            limit: 20_000,
            at: t(2, 1),
        }]);
}

#[test]
fn a_customer_limit_of_20001_is_rejected() {
    given(vec![registered()])
        .when(Stamped::new(t(2, 1), C::SetCustomerLimit { limit: 20_001 }))
        .then_expect_error(StaffError::InvalidCustomerLimit {
            got: 20_001,
            max: 20_000,
        });
}

#[test]
fn a_customer_limit_of_zero_is_rejected() {
    given(vec![registered()])
        .when(Stamped::new(t(2, 1), C::SetCustomerLimit { limit: 0 }))
        .then_expect_error(StaffError::InvalidCustomerLimit {
            got: 0,
            max: 20_000,
        });
}

#[test]
fn a_customer_limit_of_one_is_accepted() {
    given(vec![registered()])
        .when(Stamped::new(t(2, 1), C::SetCustomerLimit { limit: 1 }))
        .then_expect_events(vec![E::CustomerLimitChanged {
            limit: 1,
            at: t(2, 1),
        }]);
}

// ---------------------------------------------------------------- departure

#[test]
fn a_staff_member_can_be_marked_departed() {
    given(vec![registered()])
        .when(Stamped::new(t(2, 1), C::MarkDeparted))
        .then_expect_events(vec![E::StaffDeparted { at: t(2, 1) }]);
}

#[test]
fn a_staff_member_cannot_depart_twice() {
    given(vec![registered(), E::StaffDeparted { at: t(2, 1) }])
        .when(Stamped::new(t(3, 1), C::MarkDeparted))
        .then_expect_error(StaffError::Departed);
}

#[test]
fn a_departed_staff_member_cannot_change_limit_or_store() {
    for command in [
        C::SetCustomerLimit { limit: 10_000 },
        C::MoveToStore {
            store: store("beijing-001"),
        },
    ] {
        given(vec![registered(), E::StaffDeparted { at: t(2, 1) }])
            .when(Stamped::new(t(3, 1), command))
            .then_expect_error(StaffError::Departed);
    }
}

#[test]
fn a_departed_owner_s_groups_can_still_be_claimed_for_transfer() {
    given(vec![registered(), E::StaffDeparted { at: t(2, 1) }])
        .when(Stamped::new(t(3, 1), claim(1)))
        .then_expect_events(vec![claimed(1, date(3), t(3, 1))]);
}

// ---------------------------------------------------------------- daily group transfers

#[test]
fn a_group_transfer_claim_counts_against_the_shanghai_day() {
    // 2 March 17:00 UTC is already 3 March in Shanghai.
    given(vec![registered()])
        .when(Stamped::new(t(2, 17), claim(1)))
        .then_expect_events(vec![claimed(1, date(3), t(2, 17))]);
}

#[test]
fn the_300th_group_transfer_of_a_shanghai_day_is_allowed() {
    given(claimed_on_shanghai_2_march(299))
        .when(Stamped::new(t(2, 15), claim(299)))
        .then_expect_events(vec![claimed(299, date(2), t(2, 15))]);
}

#[test]
fn the_301st_group_transfer_of_a_shanghai_day_is_rejected() {
    given(claimed_on_shanghai_2_march(300))
        .when(Stamped::new(ts(2, 15, 59, 59), claim(300)))
        .then_expect_error(StaffError::DailyGroupTransferLimit(300));
}

#[test]
fn group_transfers_are_allowed_again_the_next_shanghai_day() {
    given(claimed_on_shanghai_2_march(300))
        .when(Stamped::new(t(2, 16), claim(300)))
        .then_expect_events(vec![claimed(300, date(3), t(2, 16))]);
}

#[test]
fn the_group_transfer_day_is_the_shanghai_day_not_the_utc_day() {
    // The 300 claims were all made on 1 March UTC; 2 March 01:00 UTC is another
    // UTC day but the same Shanghai day (2 March).
    given(claimed_on_shanghai_2_march(300))
        .when(Stamped::new(t(2, 1), claim(300)))
        .then_expect_error(StaffError::DailyGroupTransferLimit(300));
}

#[test]
fn claiming_a_group_already_claimed_today_yields_no_events() {
    given(claimed_on_shanghai_2_march(5))
        .when(Stamped::new(t(2, 10), claim(3)))
        .then_expect_events(vec![]);
}

#[test]
fn claiming_a_group_already_claimed_today_is_idempotent_even_at_the_limit() {
    given(claimed_on_shanghai_2_march(300))
        .when(Stamped::new(t(2, 10), claim(42)))
        .then_expect_events(vec![]);
}

#[test]
fn a_group_claimed_yesterday_is_claimed_again_today() {
    given(claimed_on_shanghai_2_march(5))
        .when(Stamped::new(t(2, 16), claim(3)))
        .then_expect_events(vec![claimed(3, date(3), t(2, 16))]);
}

#[test]
fn a_claim_recorded_late_counts_against_its_own_day() {
    // 300 claims on Shanghai 2 March, then one on 3 March is recorded: a late claim for
    // 2 March is still over that day's limit.
    let mut events = claimed_on_shanghai_2_march(rules::GROUP_TRANSFERS_PER_OWNER_PER_DAY);
    events.push(claimed(1_000, date(3), t(2, 18)));
    given(events)
        .when(Stamped::new(t(1, 23), claim(2_000)))
        .then_expect_error(StaffError::DailyGroupTransferLimit(
            rules::GROUP_TRANSFERS_PER_OWNER_PER_DAY,
        ));
}

#[test]
fn the_groups_claimed_on_a_day_are_what_a_handover_plan_starts_from() {
    let mut staff = Staff::default();
    for event in claimed_on_shanghai_2_march(7) {
        staff.apply(event);
    }
    assert_eq!(staff.groups_claimed_on(date(2)), 7);
    assert_eq!(staff.groups_claimed_on(date(3)), 0);
}
