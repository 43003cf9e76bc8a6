use super::*;

use chrono::{Duration, TimeZone};
use chrono_tz::Asia::Shanghai;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use crate::rules;
use crate::values::{MessageId, StoreId};

use CustomerCommand as C;
use CustomerEvent as E;

// ---------------------------------------------------------------- helpers

/// 2026-03-`day` `hour`:00:00 UTC.
fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

/// 2026-03-`day` `hour`:`minute`:00 UTC.
fn tm(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

const ZHANG: &str = "zhangsan";
const LI: &str = "lisi";
const WANG: &str = "wangwu";
const ZHAO: &str = "zhaoliu";

fn staff(s: &str) -> StaffId {
    StaffId::parse(s).unwrap()
}

fn tag(s: &str) -> TagId {
    TagId::parse(s).unwrap()
}

fn coupon(s: &str) -> CouponId {
    CouponId::parse(s).unwrap()
}

fn campaign() -> CampaignId {
    CampaignId::parse("spring-sale").unwrap()
}

fn group(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s).unwrap()
}

fn store() -> StoreId {
    StoreId::parse("shanghai-001").unwrap()
}

fn message(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn yuan(n: i64) -> Money {
    Money::from_fen(n * 100).unwrap()
}

fn handover(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn given(events: Vec<CustomerEvent>) -> AggregateTestExecutor<Customer> {
    TestFramework::<Customer>::with(()).given(events)
}

fn replay(events: Vec<CustomerEvent>) -> Customer {
    let mut customer = Customer::default();
    for event in events {
        customer.apply(event);
    }
    customer
}

fn friend_added(s: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::FriendAdded {
        staff: staff(s),
        add_way: AddWay::QR_CODE,
        channel_state: None,
        at,
    }
}

fn tagged(s: &str, tag_id: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::Tagged {
        staff: staff(s),
        tag: tag(tag_id),
        at,
    }
}

fn coupon_issued(id: &str, expires_at: DateTime<Utc>, at: DateTime<Utc>) -> CustomerEvent {
    E::CouponIssued {
        coupon: coupon(id),
        campaign: campaign(),
        value: yuan(50),
        expires_at,
        staff: Some(staff(ZHANG)),
        at,
    }
}

fn mass_message(id: &str, sender: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::MassMessageDelivered {
        message: message(id),
        sender: staff(sender),
        at,
    }
}

fn moment(id: &str, sender: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::MomentDelivered {
        moment: message(id),
        sender: staff(sender),
        at,
    }
}

fn deliver_mass_message(id: &str, sender: &str) -> CustomerCommand {
    C::DeliverMassMessage {
        message: message(id),
        sender: staff(sender),
        time_zone: Shanghai,
    }
}

fn deliver_moment(id: &str, sender: &str) -> CustomerCommand {
    C::DeliverMoment {
        moment: message(id),
        sender: staff(sender),
        time_zone: Shanghai,
    }
}

fn handover_requested(
    id: u128,
    from: &str,
    to: &str,
    kind: HandoverKind,
    at: DateTime<Utc>,
) -> CustomerEvent {
    E::HandoverRequested {
        handover: handover(id),
        from: staff(from),
        to: staff(to),
        kind,
        at,
        auto_accept_at: at + Duration::hours(24),
    }
}

/// A complete on-job handover: requested at `at`, accepted 24 h later.
fn handed_over(id: u128, from: &str, to: &str, at: DateTime<Utc>) -> Vec<CustomerEvent> {
    let done = at + Duration::hours(24);
    vec![
        handover_requested(id, from, to, HandoverKind::OnJob, at),
        E::HandoverAccepted {
            handover: handover(id),
            from: staff(from),
            to: staff(to),
            at: done,
        },
        E::FriendRemoved {
            staff: staff(from),
            by: RemovedBy::Transfer,
            at: done,
        },
    ]
}

fn handover_refused(id: u128, from: &str, to: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::HandoverRefused {
        handover: handover(id),
        from: staff(from),
        to: staff(to),
        reason: RefusalReason::CustomerRefused,
        at,
    }
}

fn request_handover(id: u128, from: &str, to: &str) -> CustomerCommand {
    C::RequestHandover {
        handover: handover(id),
        from: staff(from),
        to: staff(to),
        kind: HandoverKind::OnJob,
        from_departed_at: None,
        successor_at_limit: false,
    }
}

fn request_resigned_handover(
    id: u128,
    from: &str,
    to: &str,
    departed_at: Option<DateTime<Utc>>,
) -> CustomerCommand {
    C::RequestHandover {
        handover: handover(id),
        from: staff(from),
        to: staff(to),
        kind: HandoverKind::Resigned,
        from_departed_at: departed_at,
        successor_at_limit: false,
    }
}

fn change_remark(s: &str, remark: &str) -> CustomerCommand {
    C::ChangeRemark {
        staff: staff(s),
        remark: remark.to_string(),
        description: String::new(),
    }
}

fn remark_changed(s: &str, remark: &str, at: DateTime<Utc>) -> CustomerEvent {
    E::RemarkChanged {
        staff: staff(s),
        remark: remark.to_string(),
        description: String::new(),
        at,
    }
}

/// Zhang serves the customer and has asked for an on-job handover to Li at day 2 10:00.
fn on_job_handover_in_flight() -> Vec<CustomerEvent> {
    vec![
        friend_added(ZHANG, t(1, 9)),
        handover_requested(1, ZHANG, LI, HandoverKind::OnJob, t(2, 10)),
    ]
}

/// Zhang left on day 1; a resigned handover of his customer to Li is in flight.
fn resigned_handover_in_flight() -> Vec<CustomerEvent> {
    vec![
        friend_added(ZHANG, t(1, 9)),
        handover_requested(1, ZHANG, LI, HandoverKind::Resigned, t(2, 10)),
    ]
}

// ---------------------------------------------------------------- friends

#[test]
fn adding_a_friend_creates_the_customer() {
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::AddFriend {
                staff: staff(ZHANG),
                add_way: AddWay::QR_CODE,
                channel_state: Some("store-qr".to_string()),
            },
        ))
        .then_expect_events(vec![E::FriendAdded {
            staff: staff(ZHANG),
            add_way: AddWay::QR_CODE,
            channel_state: Some("store-qr".to_string()),
            at: t(1, 9),
        }]);
}

#[test]
fn a_customer_can_be_the_friend_of_several_staff_at_once() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::AddFriend {
                staff: staff(LI),
                add_way: AddWay::PHONE_SEARCH,
                channel_state: None,
            },
        ))
        .then_expect_events(vec![E::FriendAdded {
            staff: staff(LI),
            add_way: AddWay::PHONE_SEARCH,
            channel_state: None,
            at: t(1, 10),
        }]);
}

#[test]
fn the_same_staff_cannot_add_the_customer_twice() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::AddFriend {
            staff: staff(ZHANG),
            add_way: AddWay::QR_CODE,
            channel_state: None,
        },
    ))
    .then_expect_error(CustomerError::AlreadyFriend(staff(ZHANG)));
}

#[test]
fn a_welcome_wecom_accepted_is_recorded_in_the_name_of_the_guide_who_was_added() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            tm(1, 9, 1),
            C::RecordWelcome {
                sender: staff(ZHANG),
                channel: Some("store-qr".into()),
            },
        ))
        .then_expect_events(vec![E::WelcomeMessageSent {
            sender: staff(ZHANG),
            channel: Some("store-qr".into()),
            at: tm(1, 9, 1),
        }]);
}

#[test]
fn a_welcome_is_never_recorded_for_a_guide_who_is_not_the_customers_friend() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            tm(1, 9, 1),
            C::RecordWelcome {
                sender: staff(LI),
                channel: None,
            },
        ))
        .then_expect_error(CustomerError::NotAFriend(staff(LI)));
    given(vec![])
        .when(Stamped::new(
            tm(1, 9, 1),
            C::RecordWelcome {
                sender: staff(ZHANG),
                channel: None,
            },
        ))
        .then_expect_error(CustomerError::UnknownCustomer);
}

#[test]
fn a_staff_member_who_was_removed_can_add_the_customer_again() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::FriendRemoved {
            staff: staff(ZHANG),
            by: RemovedBy::Customer,
            at: t(2, 9),
        },
    ])
    .when(Stamped::new(
        t(3, 9),
        C::AddFriend {
            staff: staff(ZHANG),
            add_way: AddWay::QR_CODE,
            channel_state: None,
        },
    ))
    .then_expect_events(vec![friend_added(ZHANG, t(3, 9))]);
}

#[test]
fn commands_on_a_never_seen_customer_are_rejected() {
    let commands = vec![
        C::RemoveFriend {
            staff: staff(ZHANG),
            by: RemovedBy::Staff,
        },
        C::UpdateProfile {
            name: "王女士".to_string(),
            phone: None,
        },
        C::Tag {
            staff: staff(ZHANG),
            tag: tag("vip"),
            tag_state: TagState::Active,
        },
        C::Untag {
            staff: staff(ZHANG),
            tag: tag("vip"),
        },
        change_remark(ZHANG, "王女士"),
        C::IssueCoupon {
            coupon: coupon("c1"),
            campaign: campaign(),
            value: yuan(50),
            expires_at: t(30, 0),
            staff: None,
        },
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: None,
        },
        C::ExpireCoupon {
            coupon: coupon("c1"),
        },
        C::RecordGroupJoin {
            group: group("wr1"),
            join_scene: 1,
        },
        C::RecordGroupLeave {
            group: group("wr1"),
            quit_scene: 0,
        },
        C::RecordPurchase {
            order: order("o1"),
            amount: yuan(100),
            store: store(),
            staff: None,
        },
        deliver_mass_message("m1", ZHANG),
        deliver_moment("p1", ZHANG),
        request_handover(1, ZHANG, LI),
        C::AcceptHandover {
            handover: handover(1),
            trigger: AcceptTrigger::Reported,
        },
        C::RefuseHandover {
            handover: handover(1),
            reason: RefusalReason::CustomerRefused,
        },
    ];
    for command in commands {
        given(vec![])
            .when(Stamped::new(t(1, 9), command))
            .then_expect_error(CustomerError::UnknownCustomer);
    }
}

#[test]
fn a_customer_who_lost_every_friend_is_still_known() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::FriendRemoved {
            staff: staff(ZHANG),
            by: RemovedBy::Customer,
            at: t(2, 9),
        },
    ])
    .when(Stamped::new(
        t(3, 9),
        C::RecordPurchase {
            order: order("o1"),
            amount: yuan(100),
            store: store(),
            staff: None,
        },
    ))
    .then_expect_events(vec![E::PurchaseRecorded {
        order: order("o1"),
        amount: yuan(100),
        store: store(),
        staff: None,
        at: t(3, 9),
    }]);
}

#[test]
fn a_friend_can_be_removed() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 10)),
    ])
    .when(Stamped::new(
        t(2, 9),
        C::RemoveFriend {
            staff: staff(ZHANG),
            by: RemovedBy::Staff,
        },
    ))
    .then_expect_events(vec![E::FriendRemoved {
        staff: staff(ZHANG),
        by: RemovedBy::Staff,
        at: t(2, 9),
    }]);
}

#[test]
fn a_staff_member_who_is_not_a_friend_cannot_be_removed() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 9),
            C::RemoveFriend {
                staff: staff(LI),
                by: RemovedBy::Staff,
            },
        ))
        .then_expect_error(CustomerError::NotAFriend(staff(LI)));
}

// ---------------------------------------------------------------- profile

#[test]
fn a_profile_name_must_not_be_blank() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::UpdateProfile {
                name: "   ".to_string(),
                phone: None,
            },
        ))
        .then_expect_error(CustomerError::EmptyName);
}

#[test]
fn a_profile_name_of_64_characters_is_accepted() {
    let name = "金".repeat(rules::CUSTOMER_NAME_MAX_CHARS);
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::UpdateProfile {
                name: name.clone(),
                phone: Some("13800000000".to_string()),
            },
        ))
        .then_expect_events(vec![E::ProfileUpdated {
            name,
            phone: Some("13800000000".to_string()),
            at: t(1, 10),
            gender: None,
            avatar: None,
        }]);
}

#[test]
fn a_profile_name_of_65_characters_is_rejected() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::UpdateProfile {
                name: "金".repeat(65),
                phone: None,
            },
        ))
        .then_expect_error(CustomerError::TextTooLong {
            field: "name",
            chars: 65,
            max: 64,
        });
}

// ---------------------------------------------------------------- tags

#[test]
fn a_friend_can_tag_the_customer_with_an_active_tag() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::Tag {
                staff: staff(ZHANG),
                tag: tag("vip"),
                tag_state: TagState::Active,
            },
        ))
        .then_expect_events(vec![tagged(ZHANG, "vip", t(1, 10))]);
}

#[test]
fn a_deleted_tag_cannot_be_applied() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::Tag {
                staff: staff(ZHANG),
                tag: tag("vip"),
                tag_state: TagState::Deleted,
            },
        ))
        .then_expect_error(CustomerError::TagDeleted(tag("vip")));
}

#[test]
fn a_tag_unknown_to_the_library_cannot_be_applied() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::Tag {
                staff: staff(ZHANG),
                tag: tag("vip"),
                tag_state: TagState::Unknown,
            },
        ))
        .then_expect_error(CustomerError::UnknownTag(tag("vip")));
}

#[test]
fn only_a_friend_can_tag_the_customer() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::Tag {
                staff: staff(LI),
                tag: tag("vip"),
                tag_state: TagState::Active,
            },
        ))
        .then_expect_error(CustomerError::NotAFriend(staff(LI)));
}

#[test]
fn the_same_staff_cannot_apply_a_tag_twice() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::Tag {
            staff: staff(ZHANG),
            tag: tag("vip"),
            tag_state: TagState::Active,
        },
    ))
    .then_expect_error(CustomerError::AlreadyTagged {
        staff: staff(ZHANG),
        tag: tag("vip"),
    });
}

#[test]
fn another_staff_can_apply_a_tag_already_applied_through_a_different_relation() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::Tag {
            staff: staff(LI),
            tag: tag("vip"),
            tag_state: TagState::Active,
        },
    ))
    .then_expect_events(vec![tagged(LI, "vip", t(1, 11))]);
}

#[test]
fn a_tag_applied_through_one_relation_cannot_be_removed_through_another() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::Untag {
            staff: staff(LI),
            tag: tag("vip"),
        },
    ))
    .then_expect_error(CustomerError::NotTagged {
        staff: staff(LI),
        tag: tag("vip"),
    });
}

#[test]
fn a_tag_can_be_removed_by_the_staff_who_applied_it() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::Untag {
            staff: staff(ZHANG),
            tag: tag("vip"),
        },
    ))
    .then_expect_events(vec![E::Untagged {
        staff: staff(ZHANG),
        tag: tag("vip"),
        at: t(1, 11),
    }]);
}

#[test]
fn a_tag_that_was_never_applied_cannot_be_removed() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
    ])
    .when(Stamped::new(
        t(1, 11),
        C::Untag {
            staff: staff(ZHANG),
            tag: tag("new-mother"),
        },
    ))
    .then_expect_error(CustomerError::NotTagged {
        staff: staff(ZHANG),
        tag: tag("new-mother"),
    });
}

#[test]
fn a_removed_tag_cannot_be_removed_again() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        tagged(ZHANG, "vip", t(1, 10)),
        E::Untagged {
            staff: staff(ZHANG),
            tag: tag("vip"),
            at: t(1, 11),
        },
    ])
    .when(Stamped::new(
        t(1, 12),
        C::Untag {
            staff: staff(ZHANG),
            tag: tag("vip"),
        },
    ))
    .then_expect_error(CustomerError::NotTagged {
        staff: staff(ZHANG),
        tag: tag("vip"),
    });
}

// ---------------------------------------------------------------- remark and description

#[test]
fn a_remark_of_20_chinese_characters_is_accepted() {
    let remark = "周".repeat(rules::REMARK_MAX_CHARS);
    assert_eq!(remark.chars().count(), 20);
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(1, 10), change_remark(ZHANG, &remark)))
        .then_expect_events(vec![remark_changed(ZHANG, &remark, t(1, 10))]);
}

#[test]
fn a_remark_of_21_chinese_characters_is_rejected() {
    let remark = "周".repeat(21);
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(1, 10), change_remark(ZHANG, &remark)))
        .then_expect_error(CustomerError::TextTooLong {
            field: "remark",
            chars: 21,
            max: 20,
        });
}

#[test]
fn a_description_of_150_chinese_characters_is_accepted() {
    let description = "喜欢黄金".repeat(37) + "首饰";
    assert_eq!(description.chars().count(), rules::DESCRIPTION_MAX_CHARS);
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::ChangeRemark {
                staff: staff(ZHANG),
                remark: "王女士".to_string(),
                description: description.clone(),
            },
        ))
        .then_expect_events(vec![E::RemarkChanged {
            staff: staff(ZHANG),
            remark: "王女士".to_string(),
            description,
            at: t(1, 10),
        }]);
}

#[test]
fn a_description_of_151_chinese_characters_is_rejected() {
    let description = "喜欢黄金".repeat(37) + "首饰品";
    assert_eq!(description.chars().count(), 151);
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::ChangeRemark {
                staff: staff(ZHANG),
                remark: "王女士".to_string(),
                description,
            },
        ))
        .then_expect_error(CustomerError::TextTooLong {
            field: "description",
            chars: 151,
            max: 150,
        });
}

#[test]
fn only_a_friend_can_change_their_remark() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(1, 10), change_remark(LI, "王女士")))
        .then_expect_error(CustomerError::NotAFriend(staff(LI)));
}

#[test]
fn each_relation_keeps_its_own_remark_and_tags() {
    let customer = replay(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
        remark_changed(ZHANG, "王女士", t(1, 10)),
        remark_changed(LI, "王姐", t(1, 10)),
        tagged(ZHANG, "vip", t(1, 11)),
    ]);
    let zhang = customer.relation(&staff(ZHANG)).unwrap();
    let li = customer.relation(&staff(LI)).unwrap();
    assert_eq!(zhang.remark, "王女士");
    assert_eq!(li.remark, "王姐");
    assert!(zhang.tags.contains(&tag("vip")));
    assert!(li.tags.is_empty());
}

// ---------------------------------------------------------------- coupons

#[test]
fn a_coupon_is_issued_with_its_expiry() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::IssueCoupon {
                coupon: coupon("c1"),
                campaign: campaign(),
                value: yuan(50),
                expires_at: t(31, 16),
                staff: Some(staff(ZHANG)),
            },
        ))
        .then_expect_events(vec![coupon_issued("c1", t(31, 16), t(1, 10))]);
}

#[test]
fn the_same_coupon_cannot_be_issued_twice() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(31, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(2, 10),
        C::IssueCoupon {
            coupon: coupon("c1"),
            campaign: campaign(),
            value: yuan(50),
            expires_at: t(31, 16),
            staff: Some(staff(ZHANG)),
        },
    ))
    .then_expect_error(CustomerError::CouponAlreadyIssued(coupon("c1")));
}

#[test]
fn a_coupon_expiring_at_the_instant_of_issue_is_rejected() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::IssueCoupon {
                coupon: coupon("c1"),
                campaign: campaign(),
                value: yuan(50),
                expires_at: t(1, 10),
                staff: None,
            },
        ))
        .then_expect_error(CustomerError::CouponExpiresBeforeIssue(coupon("c1")));
}

#[test]
fn a_coupon_expiring_before_issue_is_rejected() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::IssueCoupon {
                coupon: coupon("c1"),
                campaign: campaign(),
                value: yuan(50),
                expires_at: t(1, 9),
                staff: None,
            },
        ))
        .then_expect_error(CustomerError::CouponExpiresBeforeIssue(coupon("c1")));
}

#[test]
fn a_coupon_expiring_one_second_after_issue_is_accepted() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::IssueCoupon {
                coupon: coupon("c1"),
                campaign: campaign(),
                value: yuan(50),
                expires_at: t(1, 10) + secs(1),
                staff: Some(staff(ZHANG)),
            },
        ))
        .then_expect_events(vec![coupon_issued("c1", t(1, 10) + secs(1), t(1, 10))]);
}

#[test]
fn a_coupon_can_be_redeemed_one_second_before_expiry() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(31, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(31, 16) - secs(1),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: Some(order("o1")),
        },
    ))
    .then_expect_events(vec![E::CouponRedeemed {
        coupon: coupon("c1"),
        order: Some(order("o1")),
        at: t(31, 16) - secs(1),
    }]);
}

#[test]
fn a_coupon_cannot_be_redeemed_exactly_at_expiry() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(31, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(31, 16),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: None,
        },
    ))
    .then_expect_error(CustomerError::CouponExpired(coupon("c1")));
}

#[test]
fn a_coupon_cannot_be_redeemed_after_expiry() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(25, 10),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: None,
        },
    ))
    .then_expect_error(CustomerError::CouponExpired(coupon("c1")));
}

#[test]
fn a_coupon_redeems_only_once() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(31, 16), t(1, 10)),
        E::CouponRedeemed {
            coupon: coupon("c1"),
            order: Some(order("o1")),
            at: t(2, 10),
        },
    ])
    .when(Stamped::new(
        t(3, 10),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: Some(order("o2")),
        },
    ))
    .then_expect_error(CustomerError::CouponAlreadyRedeemed(coupon("c1")));
}

#[test]
fn a_coupon_not_issued_to_this_customer_cannot_be_redeemed() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(31, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(2, 10),
        C::RedeemCoupon {
            coupon: coupon("c2"),
            order: None,
        },
    ))
    .then_expect_error(CustomerError::CouponNotIssued(coupon("c2")));
}

#[test]
fn a_coupon_marked_expired_cannot_be_redeemed() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
        E::CouponExpired {
            coupon: coupon("c1"),
            at: t(20, 16),
        },
    ])
    .when(Stamped::new(
        t(21, 10),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: None,
        },
    ))
    .then_expect_error(CustomerError::CouponExpired(coupon("c1")));
}

#[test]
fn a_coupon_marked_expired_cannot_be_redeemed_even_by_a_redemption_stamped_before_expiry() {
    // The expiry event is the record: a late-arriving redemption stamped earlier
    // does not revive the coupon.
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
        E::CouponExpired {
            coupon: coupon("c1"),
            at: t(20, 16),
        },
    ])
    .when(Stamped::new(
        t(20, 10),
        C::RedeemCoupon {
            coupon: coupon("c1"),
            order: None,
        },
    ))
    .then_expect_error(CustomerError::CouponExpired(coupon("c1")));
}

#[test]
fn a_coupon_can_be_marked_expired_exactly_at_its_expiry() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(20, 16),
        C::ExpireCoupon {
            coupon: coupon("c1"),
        },
    ))
    .then_expect_events(vec![E::CouponExpired {
        coupon: coupon("c1"),
        at: t(20, 16),
    }]);
}

#[test]
fn a_coupon_cannot_be_marked_expired_one_second_before_its_expiry() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
    ])
    .when(Stamped::new(
        t(20, 16) - secs(1),
        C::ExpireCoupon {
            coupon: coupon("c1"),
        },
    ))
    .then_expect_error(CustomerError::CouponNotYetExpired(coupon("c1")));
}

#[test]
fn a_redeemed_coupon_cannot_be_marked_expired() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
        E::CouponRedeemed {
            coupon: coupon("c1"),
            order: None,
            at: t(2, 10),
        },
    ])
    .when(Stamped::new(
        t(21, 0),
        C::ExpireCoupon {
            coupon: coupon("c1"),
        },
    ))
    .then_expect_error(CustomerError::CouponAlreadyRedeemed(coupon("c1")));
}

#[test]
fn a_coupon_cannot_be_marked_expired_twice() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        coupon_issued("c1", t(20, 16), t(1, 10)),
        E::CouponExpired {
            coupon: coupon("c1"),
            at: t(20, 16),
        },
    ])
    .when(Stamped::new(
        t(21, 0),
        C::ExpireCoupon {
            coupon: coupon("c1"),
        },
    ))
    .then_expect_error(CustomerError::CouponExpired(coupon("c1")));
}

#[test]
fn a_coupon_never_issued_cannot_be_marked_expired() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(21, 0),
            C::ExpireCoupon {
                coupon: coupon("c1"),
            },
        ))
        .then_expect_error(CustomerError::CouponNotIssued(coupon("c1")));
}

// ---------------------------------------------------------------- groups

#[test]
fn a_group_join_is_recorded() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(1, 10),
            C::RecordGroupJoin {
                group: group("wr1"),
                join_scene: 1,
            },
        ))
        .then_expect_events(vec![E::JoinedGroup {
            group: group("wr1"),
            join_scene: 1,
            at: t(1, 10),
        }]);
}

#[test]
fn a_customer_cannot_join_a_group_they_are_in() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::JoinedGroup {
            group: group("wr1"),
            join_scene: 1,
            at: t(1, 10),
        },
    ])
    .when(Stamped::new(
        t(1, 11),
        C::RecordGroupJoin {
            group: group("wr1"),
            join_scene: 3,
        },
    ))
    .then_expect_error(CustomerError::AlreadyInGroup(group("wr1")));
}

#[test]
fn a_customer_can_leave_a_group_they_are_in() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::JoinedGroup {
            group: group("wr1"),
            join_scene: 1,
            at: t(1, 10),
        },
    ])
    .when(Stamped::new(
        t(2, 10),
        C::RecordGroupLeave {
            group: group("wr1"),
            quit_scene: 0,
        },
    ))
    .then_expect_events(vec![E::LeftGroup {
        group: group("wr1"),
        quit_scene: 0,
        at: t(2, 10),
    }]);
}

#[test]
fn a_customer_cannot_leave_a_group_they_are_not_in() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::JoinedGroup {
            group: group("wr1"),
            join_scene: 1,
            at: t(1, 10),
        },
    ])
    .when(Stamped::new(
        t(2, 10),
        C::RecordGroupLeave {
            group: group("wr2"),
            quit_scene: 0,
        },
    ))
    .then_expect_error(CustomerError::NotInGroup(group("wr2")));
}

#[test]
fn a_customer_who_left_a_group_can_join_it_again() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::JoinedGroup {
            group: group("wr1"),
            join_scene: 1,
            at: t(1, 10),
        },
        E::LeftGroup {
            group: group("wr1"),
            quit_scene: 0,
            at: t(2, 10),
        },
    ])
    .when(Stamped::new(
        t(3, 10),
        C::RecordGroupJoin {
            group: group("wr1"),
            join_scene: 3,
        },
    ))
    .then_expect_events(vec![E::JoinedGroup {
        group: group("wr1"),
        join_scene: 3,
        at: t(3, 10),
    }]);
}

// ---------------------------------------------------------------- purchases

#[test]
fn a_purchase_is_recorded() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 10),
            C::RecordPurchase {
                order: order("o1"),
                amount: yuan(1_299),
                store: store(),
                staff: Some(staff(ZHANG)),
            },
        ))
        .then_expect_events(vec![E::PurchaseRecorded {
            order: order("o1"),
            amount: yuan(1_299),
            store: store(),
            staff: Some(staff(ZHANG)),
            at: t(2, 10),
        }]);
}

#[test]
fn an_order_id_counts_only_once() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::PurchaseRecorded {
            order: order("o1"),
            amount: yuan(1_299),
            store: store(),
            staff: Some(staff(ZHANG)),
            at: t(2, 10),
        },
    ])
    .when(Stamped::new(
        t(2, 11),
        C::RecordPurchase {
            order: order("o1"),
            amount: yuan(1_299),
            store: store(),
            staff: Some(staff(ZHANG)),
        },
    ))
    .then_expect_error(CustomerError::DuplicateOrder(order("o1")));
}

#[test]
fn a_second_order_with_another_id_is_a_repurchase() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        E::PurchaseRecorded {
            order: order("o1"),
            amount: yuan(1_299),
            store: store(),
            staff: Some(staff(ZHANG)),
            at: t(2, 10),
        },
    ])
    .when(Stamped::new(
        t(2, 11),
        C::RecordPurchase {
            order: order("o2"),
            amount: yuan(99),
            store: store(),
            staff: None,
        },
    ))
    .then_expect_events(vec![E::PurchaseRecorded {
        order: order("o2"),
        amount: yuan(99),
        store: store(),
        staff: None,
        at: t(2, 11),
    }]);
}

// ---------------------------------------------------------------- daily deliveries

#[test]
fn a_first_mass_message_is_delivered() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 1), deliver_mass_message("m1", ZHANG)))
        .then_expect_events(vec![mass_message("m1", ZHANG, t(2, 1))]);
}

#[test]
fn mass_messages_at_15_59_and_16_01_utc_fall_on_different_shanghai_days_so_both_are_delivered() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        mass_message("m1", ZHANG, tm(2, 15, 59)),
    ])
    .when(Stamped::new(
        tm(2, 16, 1),
        deliver_mass_message("m2", ZHANG),
    ))
    .then_expect_events(vec![mass_message("m2", ZHANG, tm(2, 16, 1))]);
}

#[test]
fn a_second_mass_message_on_the_same_shanghai_day_is_rejected() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        mass_message("m1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 15), deliver_mass_message("m2", ZHANG)))
    .then_expect_error(CustomerError::MassMessageDailyLimit);
}

#[test]
fn the_mass_message_day_is_the_shanghai_day_not_the_utc_day() {
    // 2 March 20:00 UTC and 3 March 01:00 UTC are both 3 March in Shanghai.
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        mass_message("m1", ZHANG, t(2, 20)),
    ])
    .when(Stamped::new(t(3, 1), deliver_mass_message("m2", ZHANG)))
    .then_expect_error(CustomerError::MassMessageDailyLimit);
}

#[test]
fn a_mass_message_from_a_different_sender_the_same_day_is_still_rejected() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
        mass_message("m1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 15), deliver_mass_message("m2", LI)))
    .then_expect_error(CustomerError::MassMessageDailyLimit);
}

#[test]
fn a_first_moment_is_delivered() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 1), deliver_moment("p1", ZHANG)))
        .then_expect_events(vec![moment("p1", ZHANG, t(2, 1))]);
}

#[test]
fn moments_at_15_59_and_16_01_utc_fall_on_different_shanghai_days_so_both_are_delivered() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        moment("p1", ZHANG, tm(2, 15, 59)),
    ])
    .when(Stamped::new(tm(2, 16, 1), deliver_moment("p2", ZHANG)))
    .then_expect_events(vec![moment("p2", ZHANG, tm(2, 16, 1))]);
}

#[test]
fn a_second_moment_on_the_same_shanghai_day_is_rejected() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        moment("p1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 15), deliver_moment("p2", ZHANG)))
    .then_expect_error(CustomerError::MomentDailyLimit);
}

#[test]
fn the_moment_day_is_the_shanghai_day_not_the_utc_day() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        moment("p1", ZHANG, t(2, 20)),
    ])
    .when(Stamped::new(t(3, 1), deliver_moment("p2", ZHANG)))
    .then_expect_error(CustomerError::MomentDailyLimit);
}

#[test]
fn a_moment_from_a_different_sender_the_same_day_is_still_rejected() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
        moment("p1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 15), deliver_moment("p2", LI)))
    .then_expect_error(CustomerError::MomentDailyLimit);
}

#[test]
fn a_mass_message_the_same_day_does_not_use_up_the_moment() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        mass_message("m1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 2), deliver_moment("p1", ZHANG)))
    .then_expect_events(vec![moment("p1", ZHANG, t(2, 2))]);
}

#[test]
fn a_moment_the_same_day_does_not_use_up_the_mass_message() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        moment("p1", ZHANG, t(2, 1)),
    ])
    .when(Stamped::new(t(2, 2), deliver_mass_message("m1", ZHANG)))
    .then_expect_events(vec![mass_message("m1", ZHANG, t(2, 2))]);
}

// ---------------------------------------------------------------- handover: request

#[test]
fn an_on_job_handover_auto_accepts_24_hours_after_it_is_requested() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 10), request_handover(1, ZHANG, LI)))
        .then_expect_events(vec![E::HandoverRequested {
            handover: handover(1),
            from: staff(ZHANG),
            to: staff(LI),
            kind: HandoverKind::OnJob,
            at: t(2, 10),
            auto_accept_at: t(3, 10),
        }]);
}

#[test]
fn a_handover_must_start_from_a_friend() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 10), request_handover(1, WANG, LI)))
        .then_expect_error(CustomerError::NotAFriend(staff(WANG)));
}

#[test]
fn the_successor_must_differ_from_the_original_staff() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 10), request_handover(1, ZHANG, ZHANG)))
        .then_expect_error(CustomerError::SameStaff);
}

#[test]
fn a_successor_who_already_serves_the_customer_is_rejected() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        friend_added(LI, t(1, 9)),
    ])
    .when(Stamped::new(t(2, 10), request_handover(1, ZHANG, LI)))
    .then_expect_error(CustomerError::SuccessorAlreadyFriend(staff(LI)));
}

#[test]
fn a_customer_in_a_handover_cannot_start_another() {
    let mut events = on_job_handover_in_flight();
    events.push(friend_added(WANG, t(1, 9)));
    given(events)
        .when(Stamped::new(t(2, 11), request_handover(2, WANG, ZHAO)))
        .then_expect_error(CustomerError::HandoverInFlight);
}

#[test]
fn a_successor_at_their_customer_limit_is_rejected() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 10),
            C::RequestHandover {
                handover: handover(1),
                from: staff(ZHANG),
                to: staff(LI),
                kind: HandoverKind::OnJob,
                from_departed_at: None,
                successor_at_limit: true,
            },
        ))
        .then_expect_error(CustomerError::SuccessorAtLimit(staff(LI)));
}

#[test]
fn an_on_job_handover_of_a_departed_staff_is_rejected() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 10),
            C::RequestHandover {
                handover: handover(1),
                from: staff(ZHANG),
                to: staff(LI),
                kind: HandoverKind::OnJob,
                from_departed_at: Some(t(1, 18)),
                successor_at_limit: false,
            },
        ))
        .then_expect_error(CustomerError::StaffDeparted(staff(ZHANG)));
}

#[test]
fn a_resigned_handover_needs_the_staff_to_have_departed() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 10),
            request_resigned_handover(1, ZHANG, LI, None),
        ))
        .then_expect_error(CustomerError::StaffNotDeparted(staff(ZHANG)));
}

#[test]
fn a_resigned_handover_is_allowed_exactly_365_days_after_departure() {
    let now = t(20, 10);
    given(vec![friend_added(ZHANG, now - Duration::days(400))])
        .when(Stamped::new(
            now,
            request_resigned_handover(1, ZHANG, LI, Some(now - Duration::days(365))),
        ))
        .then_expect_events(vec![handover_requested(
            1,
            ZHANG,
            LI,
            HandoverKind::Resigned,
            now,
        )]);
}

#[test]
fn a_resigned_handover_is_rejected_one_second_past_365_days_after_departure() {
    let now = t(20, 10);
    given(vec![friend_added(ZHANG, now - Duration::days(400))])
        .when(Stamped::new(
            now,
            request_resigned_handover(1, ZHANG, LI, Some(now - Duration::days(365) - secs(1))),
        ))
        .then_expect_error(CustomerError::DepartureTooOld(staff(ZHANG)));
}

#[test]
fn a_resigned_handover_is_rejected_366_days_after_departure() {
    let now = t(20, 10);
    given(vec![friend_added(ZHANG, now - Duration::days(400))])
        .when(Stamped::new(
            now,
            request_resigned_handover(1, ZHANG, LI, Some(now - Duration::days(366))),
        ))
        .then_expect_error(CustomerError::DepartureTooOld(staff(ZHANG)));
}

#[test]
fn a_third_handover_within_90_days_of_the_first_is_rejected() {
    let first = t(1, 10);
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, first),
        handed_over(2, LI, WANG, t(20, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(
            first + Duration::days(90) - secs(1),
            request_handover(3, WANG, ZHAO),
        ))
        .then_expect_error(CustomerError::HandoverLimitReached);
}

#[test]
fn a_third_handover_90_days_after_the_first_is_allowed() {
    let first = t(1, 10);
    let third = first + Duration::days(90);
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, first),
        handed_over(2, LI, WANG, t(20, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(third, request_handover(3, WANG, ZHAO)))
        .then_expect_events(vec![handover_requested(
            3,
            WANG,
            ZHAO,
            HandoverKind::OnJob,
            third,
        )]);
}

#[test]
fn a_second_handover_within_90_days_is_allowed() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, t(1, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(t(5, 10), request_handover(2, LI, WANG)))
        .then_expect_events(vec![handover_requested(
            2,
            LI,
            WANG,
            HandoverKind::OnJob,
            t(5, 10),
        )]);
}

#[test]
fn refused_handovers_count_towards_the_90_day_limit() {
    given(vec![
        friend_added(ZHANG, t(1, 9)),
        handover_requested(1, ZHANG, LI, HandoverKind::OnJob, t(1, 10)),
        handover_refused(1, ZHANG, LI, t(1, 12)),
        handover_requested(2, ZHANG, WANG, HandoverKind::OnJob, t(5, 10)),
        handover_refused(2, ZHANG, WANG, t(5, 12)),
    ])
    .when(Stamped::new(t(10, 10), request_handover(3, ZHANG, ZHAO)))
    .then_expect_error(CustomerError::HandoverLimitReached);
}

// ---------------------------------------------------------------- handover: accept

#[test]
fn the_auto_accept_job_cannot_accept_one_second_before_the_window_closes() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(3, 10) - secs(1),
            C::AcceptHandover {
                handover: handover(1),
                trigger: AcceptTrigger::WindowElapsed,
            },
        ))
        .then_expect_error(CustomerError::HandoverWindowOpen);
}

#[test]
fn the_auto_accept_job_accepts_exactly_when_the_window_closes() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(3, 10),
            C::AcceptHandover {
                handover: handover(1),
                trigger: AcceptTrigger::WindowElapsed,
            },
        ))
        .then_expect_events(vec![
            E::HandoverAccepted {
                handover: handover(1),
                from: staff(ZHANG),
                to: staff(LI),
                at: t(3, 10),
            },
            E::FriendRemoved {
                staff: staff(ZHANG),
                by: RemovedBy::Transfer,
                at: t(3, 10),
            },
        ]);
}

#[test]
fn a_handover_reported_accepted_by_wecom_completes_at_any_time() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            tm(2, 10, 5),
            C::AcceptHandover {
                handover: handover(1),
                trigger: AcceptTrigger::Reported,
            },
        ))
        .then_expect_events(vec![
            E::HandoverAccepted {
                handover: handover(1),
                from: staff(ZHANG),
                to: staff(LI),
                at: tm(2, 10, 5),
            },
            E::FriendRemoved {
                staff: staff(ZHANG),
                by: RemovedBy::Transfer,
                at: tm(2, 10, 5),
            },
        ]);
}

#[test]
fn accepting_a_handover_with_the_wrong_id_is_rejected() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(3, 10),
            C::AcceptHandover {
                handover: handover(2),
                trigger: AcceptTrigger::Reported,
            },
        ))
        .then_expect_error(CustomerError::NoSuchHandover);
}

#[test]
fn refusing_a_handover_with_the_wrong_id_is_rejected() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(2),
                reason: RefusalReason::CustomerRefused,
            },
        ))
        .then_expect_error(CustomerError::NoSuchHandover);
}

#[test]
fn a_handover_cannot_be_accepted_twice() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, t(2, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(
            t(4, 10),
            C::AcceptHandover {
                handover: handover(1),
                trigger: AcceptTrigger::Reported,
            },
        ))
        .then_expect_error(CustomerError::NoSuchHandover);
}

#[test]
fn after_acceptance_the_successor_can_remove_a_tag_the_old_guide_applied() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9)), tagged(ZHANG, "vip", t(1, 10))],
        handed_over(1, ZHANG, LI, t(2, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(
            t(4, 10),
            C::Untag {
                staff: staff(LI),
                tag: tag("vip"),
            },
        ))
        .then_expect_events(vec![E::Untagged {
            staff: staff(LI),
            tag: tag("vip"),
            at: t(4, 10),
        }]);
}

#[test]
fn after_acceptance_the_successor_cannot_reapply_a_tag_the_old_guide_applied() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9)), tagged(ZHANG, "vip", t(1, 10))],
        handed_over(1, ZHANG, LI, t(2, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(
            t(4, 10),
            C::Tag {
                staff: staff(LI),
                tag: tag("vip"),
                tag_state: TagState::Active,
            },
        ))
        .then_expect_error(CustomerError::AlreadyTagged {
            staff: staff(LI),
            tag: tag("vip"),
        });
}

#[test]
fn after_acceptance_the_old_guide_is_no_longer_a_friend() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, t(2, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(t(4, 10), change_remark(ZHANG, "王女士")))
        .then_expect_error(CustomerError::NotAFriend(staff(ZHANG)));
}

#[test]
fn after_acceptance_the_successor_relation_carries_the_old_remark_and_tags() {
    let customer = replay(
        [
            vec![
                friend_added(ZHANG, t(1, 9)),
                E::RemarkChanged {
                    staff: staff(ZHANG),
                    remark: "王女士".to_string(),
                    description: "喜欢黄金首饰".to_string(),
                    at: t(1, 10),
                },
                tagged(ZHANG, "vip", t(1, 11)),
            ],
            handed_over(1, ZHANG, LI, t(2, 10)),
        ]
        .concat(),
    );
    assert!(customer.relation(&staff(ZHANG)).is_none());
    let li = customer.relation(&staff(LI)).unwrap();
    assert_eq!(li.remark, "王女士");
    assert_eq!(li.description, "喜欢黄金首饰");
    assert!(li.tags.contains(&tag("vip")));
    assert_eq!(customer.pending_handover(), None);
}

#[test]
fn after_acceptance_a_new_handover_can_be_requested() {
    let events = [
        vec![friend_added(ZHANG, t(1, 9))],
        handed_over(1, ZHANG, LI, t(2, 10)),
    ]
    .concat();
    given(events)
        .when(Stamped::new(t(5, 10), request_handover(2, LI, WANG)))
        .then_expect_events(vec![handover_requested(
            2,
            LI,
            WANG,
            HandoverKind::OnJob,
            t(5, 10),
        )]);
}

// ---------------------------------------------------------------- handover: refuse

#[test]
fn a_refused_resigned_handover_loses_the_customer() {
    given(resigned_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(1),
                reason: RefusalReason::CustomerRefused,
            },
        ))
        .then_expect_events(vec![
            handover_refused(1, ZHANG, LI, t(2, 12)),
            E::FriendRemoved {
                staff: staff(ZHANG),
                by: RemovedBy::Customer,
                at: t(2, 12),
            },
        ]);
}

#[test]
fn a_refused_on_job_handover_only_records_the_refusal() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(1),
                reason: RefusalReason::CustomerRefused,
            },
        ))
        .then_expect_events(vec![handover_refused(1, ZHANG, LI, t(2, 12))]);
}

#[test]
fn after_a_refused_on_job_handover_the_customer_stays_with_the_original_guide() {
    let mut events = on_job_handover_in_flight();
    events.push(handover_refused(1, ZHANG, LI, t(2, 12)));
    given(events)
        .when(Stamped::new(t(3, 10), change_remark(ZHANG, "王女士")))
        .then_expect_events(vec![remark_changed(ZHANG, "王女士", t(3, 10))]);
}

#[test]
fn after_a_refused_on_job_handover_the_successor_is_not_a_friend() {
    let mut events = on_job_handover_in_flight();
    events.push(handover_refused(1, ZHANG, LI, t(2, 12)));
    given(events)
        .when(Stamped::new(t(3, 10), change_remark(LI, "王女士")))
        .then_expect_error(CustomerError::NotAFriend(staff(LI)));
}

#[test]
fn after_a_refusal_a_new_handover_can_be_requested() {
    let mut events = on_job_handover_in_flight();
    events.push(handover_refused(1, ZHANG, LI, t(2, 12)));
    given(events)
        .when(Stamped::new(t(3, 10), request_handover(2, ZHANG, WANG)))
        .then_expect_events(vec![handover_requested(
            2,
            ZHANG,
            WANG,
            HandoverKind::OnJob,
            t(3, 10),
        )]);
}

#[test]
fn a_successor_at_the_customer_limit_never_removes_a_resigned_relation() {
    given(resigned_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(1),
                reason: RefusalReason::CustomerLimitExceeded,
            },
        ))
        .then_expect_events(vec![E::HandoverRefused {
            handover: handover(1),
            from: staff(ZHANG),
            to: staff(LI),
            reason: RefusalReason::CustomerLimitExceeded,
            at: t(2, 12),
        }]);
}

#[test]
fn a_successor_at_the_customer_limit_never_removes_an_on_job_relation() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(1),
                reason: RefusalReason::CustomerLimitExceeded,
            },
        ))
        .then_expect_events(vec![E::HandoverRefused {
            handover: handover(1),
            from: staff(ZHANG),
            to: staff(LI),
            reason: RefusalReason::CustomerLimitExceeded,
            at: t(2, 12),
        }]);
}

#[test]
fn a_transfer_wecom_would_not_start_leaves_a_resigned_customer_with_nobody_lost() {
    // Given a resigned handover in flight, when WeCom answers the transfer call with
    // 40096 for this customer, the handover ends refused and the relation stays: WeCom
    // never asked the customer.
    given(resigned_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RefuseHandover {
                handover: handover(1),
                reason: RefusalReason::Rejected { errcode: 40096 },
            },
        ))
        .then_expect_events(vec![E::HandoverRefused {
            handover: handover(1),
            from: staff(ZHANG),
            to: staff(LI),
            reason: RefusalReason::Rejected { errcode: 40096 },
            at: t(2, 12),
        }]);
}

#[test]
fn refusal_reasons_read_back_as_they_were_stored() {
    for reason in [
        RefusalReason::CustomerRefused,
        RefusalReason::NoTransferRecord,
        RefusalReason::Rejected { errcode: 40129 },
    ] {
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(
            serde_json::from_str::<RefusalReason>(&json).unwrap(),
            reason
        );
    }
    // Events stored before the new reasons still decode.
    assert_eq!(
        serde_json::from_str::<RefusalReason>("\"CustomerLimitExceeded\"").unwrap(),
        RefusalReason::CustomerLimitExceeded
    );
    assert_eq!(
        RefusalReason::Rejected { errcode: 40096 }.code(),
        "rejected_40096"
    );
}

// ---------------------------------------------------------------- handover: removal while in flight

#[test]
fn the_staff_cannot_remove_a_customer_whose_handover_is_in_flight() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RemoveFriend {
                staff: staff(ZHANG),
                by: RemovedBy::Staff,
            },
        ))
        .then_expect_error(CustomerError::RelationInHandover(staff(ZHANG)));
}

#[test]
fn a_relation_in_handover_cannot_be_removed_as_a_transfer_outside_the_handover() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RemoveFriend {
                staff: staff(ZHANG),
                by: RemovedBy::Transfer,
            },
        ))
        .then_expect_error(CustomerError::RelationInHandover(staff(ZHANG)));
}

#[test]
fn a_customer_deleting_the_guide_during_a_handover_refuses_it() {
    given(on_job_handover_in_flight())
        .when(Stamped::new(
            t(2, 12),
            C::RemoveFriend {
                staff: staff(ZHANG),
                by: RemovedBy::Customer,
            },
        ))
        .then_expect_events(vec![
            handover_refused(1, ZHANG, LI, t(2, 12)),
            E::FriendRemoved {
                staff: staff(ZHANG),
                by: RemovedBy::Customer,
                at: t(2, 12),
            },
        ]);
}

#[test]
fn a_handover_refused_by_deleting_the_guide_can_no_longer_be_accepted() {
    let mut events = on_job_handover_in_flight();
    events.push(handover_refused(1, ZHANG, LI, t(2, 12)));
    events.push(E::FriendRemoved {
        staff: staff(ZHANG),
        by: RemovedBy::Customer,
        at: t(2, 12),
    });
    given(events)
        .when(Stamped::new(
            t(3, 10),
            C::AcceptHandover {
                handover: handover(1),
                trigger: AcceptTrigger::WindowElapsed,
            },
        ))
        .then_expect_error(CustomerError::NoSuchHandover);
}

#[test]
fn another_staff_can_remove_the_customer_while_a_handover_is_in_flight() {
    let mut events = on_job_handover_in_flight();
    events.push(friend_added(WANG, t(1, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 12),
            C::RemoveFriend {
                staff: staff(WANG),
                by: RemovedBy::Staff,
            },
        ))
        .then_expect_events(vec![E::FriendRemoved {
            staff: staff(WANG),
            by: RemovedBy::Staff,
            at: t(2, 12),
        }]);
}

// ------------------------------------------------- deliveries recorded out of order

#[test]
fn a_mass_message_recorded_late_still_meets_the_one_already_delivered_that_day() {
    // Delivered on Shanghai 3 March, then one of 2 March arrives late: it is accepted
    // (2 March had none), and a third one for 3 March is still refused.
    let events = vec![
        friend_added(ZHANG, t(1, 0)),
        mass_message("m-3rd", ZHANG, t(3, 2)),
        mass_message("m-2nd-late", ZHANG, t(2, 2)),
    ];
    given(events)
        .when(Stamped::new(
            t(3, 6),
            deliver_mass_message("m-3rd-again", LI),
        ))
        .then_expect_error(CustomerError::MassMessageDailyLimit);
}

#[test]
fn a_moment_recorded_late_is_refused_on_a_day_that_already_had_one() {
    given(vec![
        friend_added(ZHANG, t(1, 0)),
        moment("p1", ZHANG, t(2, 2)),
        moment("p2", ZHANG, t(3, 2)),
    ])
    .when(Stamped::new(t(2, 9), deliver_moment("p-late", ZHANG)))
    .then_expect_error(CustomerError::MomentDailyLimit);
}

#[test]
fn a_delivery_older_than_every_kept_one_cannot_be_checked_and_is_refused() {
    let mut events = vec![friend_added(ZHANG, t(1, 0))];
    events.extend((0..8).map(|d| mass_message(&format!("m{d}"), ZHANG, t(10 + d, 2))));
    given(events.clone())
        .when(Stamped::new(
            t(9, 2),
            deliver_mass_message("too-late", ZHANG),
        ))
        .then_expect_error(CustomerError::DeliveryTooLate);
    // A new day after them is fine.
    given(events)
        .when(Stamped::new(t(18, 2), deliver_mass_message("m8", ZHANG)))
        .then_expect_events(vec![mass_message("m8", ZHANG, t(18, 2))]);
}

#[test]
fn a_resigned_handover_needs_a_departure_before_the_request() {
    given(vec![friend_added(ZHANG, t(1, 0))])
        .when(Stamped::new(
            t(5, 0),
            request_resigned_handover(1, ZHANG, LI, Some(t(6, 0))),
        ))
        .then_expect_error(CustomerError::StaffNotDeparted(staff(ZHANG)));
}

#[test]
fn a_resigned_handover_from_a_departure_dated_in_the_future_is_rejected_as_not_departed() {
    let now = t(20, 10);
    given(vec![friend_added(ZHANG, now - Duration::days(30))])
        .when(Stamped::new(
            now,
            request_resigned_handover(1, ZHANG, LI, Some(now + secs(60))),
        ))
        .then_expect_error(CustomerError::StaffNotDeparted(staff(ZHANG)));
}

#[test]
fn the_handover_kind_rule_alone_answers_as_the_command_does() {
    use crate::customer::{check_handover_kind, HandoverKind};
    let now = t(20, 10);
    let zhang = staff(ZHANG);
    let check = |kind, left| check_handover_kind(kind, &zhang, left, now);
    assert_eq!(check(HandoverKind::OnJob, None), Ok(()));
    assert_eq!(
        check(HandoverKind::OnJob, Some(now - secs(1))),
        Err(CustomerError::StaffDeparted(staff(ZHANG)))
    );
    assert_eq!(
        check(HandoverKind::Resigned, None),
        Err(CustomerError::StaffNotDeparted(staff(ZHANG)))
    );
    assert_eq!(
        check(HandoverKind::Resigned, Some(now + secs(1))),
        Err(CustomerError::StaffNotDeparted(staff(ZHANG)))
    );
    assert_eq!(
        check(HandoverKind::Resigned, Some(now - Duration::days(365))),
        Ok(())
    );
    assert_eq!(
        check(HandoverKind::Resigned, Some(now - Duration::days(366))),
        Err(CustomerError::DepartureTooOld(staff(ZHANG)))
    );
}

// ---------------------------------------------------------------- first import (issue 16)

fn imported(s: &str, name: &str, remark: &str, tags: &[&str]) -> C {
    C::ImportRelation(ImportedRelation {
        staff: staff(s),
        add_way: AddWay::BUSINESS_CARD,
        channel_state: Some("store-7".into()),
        profile: Some(Profile {
            name: name.into(),
            gender: Some(2),
            avatar: Some("http://p.qlogo.cn/a/0".into()),
        }),
        remark: remark.into(),
        description: String::new(),
        tags: tags.iter().map(|t| tag(t)).collect(),
    })
}

#[test]
fn an_imported_relation_of_a_new_customer_records_every_fact_at_wecoms_time() {
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            imported(ZHANG, "王女士", "VIP", &["gold", "gold", "silk"]),
        ))
        .then_expect_events(vec![
            E::FriendAdded {
                staff: staff(ZHANG),
                add_way: AddWay::BUSINESS_CARD,
                channel_state: Some("store-7".into()),
                at: t(1, 9),
            },
            E::ProfileUpdated {
                name: "王女士".into(),
                phone: None,
                at: t(1, 9),
                gender: Some(2),
                avatar: Some("http://p.qlogo.cn/a/0".into()),
            },
            E::RemarkChanged {
                staff: staff(ZHANG),
                remark: "VIP".into(),
                description: String::new(),
                at: t(1, 9),
            },
            tagged(ZHANG, "gold", t(1, 9)),
            tagged(ZHANG, "silk", t(1, 9)),
        ]);
}

#[test]
fn a_second_relation_of_the_same_customer_records_the_profile_once() {
    let first = vec![
        friend_added(ZHANG, t(1, 9)),
        E::ProfileUpdated {
            name: "王女士".into(),
            phone: Some("13800000000".into()),
            at: t(1, 9),
            gender: Some(2),
            avatar: Some("http://p.qlogo.cn/a/0".into()),
        },
    ];
    given(first)
        .when(Stamped::new(t(2, 9), imported(LI, "王女士", "", &[])))
        .then_expect_events(vec![E::FriendAdded {
            staff: staff(LI),
            add_way: AddWay::BUSINESS_CARD,
            channel_state: Some("store-7".into()),
            at: t(2, 9),
        }]);
}

#[test]
fn importing_what_the_stream_already_holds_records_nothing_and_erases_nothing() {
    let live = vec![
        friend_added(ZHANG, t(1, 9)),
        E::RemarkChanged {
            staff: staff(ZHANG),
            remark: "set since".into(),
            description: String::new(),
            at: t(3, 9),
        },
        tagged(ZHANG, "gold", t(3, 9)),
    ];
    let mut command = imported(ZHANG, " ", "", &["gold"]);
    if let C::ImportRelation(r) = &mut command {
        r.profile = None;
    }
    given(live)
        .when(Stamped::new(t(1, 9), command))
        .then_expect_events(vec![]);
}

#[test]
fn imported_text_longer_than_the_engine_keeps_is_cut_not_refused() {
    let customer = replay(vec![]);
    let events = customer
        .decide(
            imported(ZHANG, &"金".repeat(70), &"备".repeat(30), &[]),
            t(1, 9),
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e,
        E::ProfileUpdated { name, .. } if name.chars().count() == rules::CUSTOMER_NAME_MAX_CHARS)));
    assert!(events.iter().any(|e| matches!(e,
        E::RemarkChanged { remark, .. } if remark.chars().count() == rules::REMARK_MAX_CHARS)));
}

#[test]
fn old_profile_events_without_gender_or_avatar_still_decode_and_encode_the_same() {
    let old = r#"{"ProfileUpdated":{"name":"王","phone":null,"at":"2026-03-01T09:00:00Z"}}"#;
    let event: CustomerEvent = serde_json::from_str(old).unwrap();
    assert!(matches!(
        &event,
        E::ProfileUpdated {
            gender: None,
            avatar: None,
            ..
        }
    ));
    assert_eq!(serde_json::to_string(&event).unwrap(), old);
}

// ---------------------------------------------------------------- erasure (PIPL)

fn erased(at: DateTime<Utc>) -> CustomerEvent {
    E::CustomerErased {
        reason: "客户申请删除".into(),
        at,
    }
}

#[test]
fn given_a_known_customer_when_erased_then_the_erasure_is_recorded_with_its_reason() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(
            t(2, 9),
            C::Erase {
                reason: "客户申请删除".into(),
            },
        ))
        .then_expect_events(vec![erased(t(2, 9))]);
}

#[test]
fn given_an_erased_customer_when_erased_again_then_it_is_refused() {
    given(vec![friend_added(ZHANG, t(1, 9)), erased(t(2, 9))])
        .when(Stamped::new(
            t(3, 9),
            C::Erase {
                reason: "again".into(),
            },
        ))
        .then_expect_error(CustomerError::AlreadyErased);
}

#[test]
fn given_a_customer_when_erased_without_a_reason_then_it_is_refused() {
    given(vec![friend_added(ZHANG, t(1, 9))])
        .when(Stamped::new(t(2, 9), C::Erase { reason: " ".into() }))
        .then_expect_error(CustomerError::EmptyReason);
}

#[test]
fn given_an_erased_customer_when_wecom_reports_a_new_profile_then_it_is_recorded_without_it() {
    given(vec![friend_added(ZHANG, t(1, 9)), erased(t(2, 9))])
        .when(Stamped::new(
            t(3, 9),
            C::UpdateProfile {
                name: "王芳".into(),
                phone: Some("13800000000".into()),
            },
        ))
        .then_expect_events(vec![E::ProfileUpdated {
            name: String::new(),
            phone: None,
            at: t(3, 9),
            gender: None,
            avatar: None,
        }]);
}

#[test]
fn given_an_erased_customer_then_the_state_holds_no_profile_and_no_remark() {
    let customer = replay(vec![
        friend_added(ZHANG, t(1, 9)),
        E::ProfileUpdated {
            name: "王芳".into(),
            phone: Some("13800000000".into()),
            at: t(1, 10),
            gender: None,
            avatar: None,
        },
        E::RemarkChanged {
            staff: staff(ZHANG),
            remark: "王姐".into(),
            description: "喜欢珍珠".into(),
            at: t(1, 11),
        },
        erased(t(2, 9)),
    ]);
    assert!(customer.is_erased());
    assert_eq!(customer.profile(), None);
    let relation = customer.relation(&staff(ZHANG)).unwrap();
    assert_eq!(
        (relation.remark.as_str(), relation.description.as_str()),
        ("", "")
    );
}
