use super::*;

use chrono::TimeZone;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use TagLibraryCommand as C;
use TagLibraryEvent as E;

// ---------------------------------------------------------------- helpers

/// 2026-03-`day` `hour`:00:00 UTC.
fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn tag(s: &str) -> TagId {
    TagId::parse(s).unwrap()
}

fn group(s: &str) -> TagGroupId {
    TagGroupId::parse(s).unwrap()
}

fn given(events: Vec<TagLibraryEvent>) -> AggregateTestExecutor<TagLibrary> {
    TestFramework::<TagLibrary>::with(()).given(events)
}

fn replay(events: Vec<TagLibraryEvent>) -> TagLibrary {
    let mut library = TagLibrary::default();
    for event in events {
        library.apply(event);
    }
    library
}

fn group_created(id: &str, name: &str) -> TagLibraryEvent {
    E::TagGroupCreated {
        group: group(id),
        name: name.to_string(),
        at: t(1, 9),
    }
}

fn tag_created(id: &str, group_id: &str, name: &str) -> TagLibraryEvent {
    E::TagCreated {
        tag: tag(id),
        group: group(group_id),
        name: name.to_string(),
        at: t(1, 10),
    }
}

fn tag_deleted(id: &str, at: DateTime<Utc>) -> TagLibraryEvent {
    E::TagDeleted { tag: tag(id), at }
}

fn create_tag(id: &str, group_id: &str, name: &str) -> C {
    C::CreateTag {
        tag: tag(id),
        group: group(group_id),
        name: name.to_string(),
    }
}

/// Two groups: age band (with "25-30" and "30-40") and style (with "classic").
fn library() -> Vec<TagLibraryEvent> {
    vec![
        group_created("age", "年龄段"),
        group_created("style", "风格"),
        tag_created("age-25", "age", "25-30岁"),
        tag_created("age-30", "age", "30-40岁"),
        tag_created("classic", "style", "古法"),
    ]
}

/// One group holding `count` tags `t0..`.
fn library_with_tags(count: usize) -> Vec<TagLibraryEvent> {
    let mut events = vec![group_created("bulk", "批量")];
    events.extend((0..count).map(|n| tag_created(&format!("t{n}"), "bulk", &format!("标签{n}"))));
    events
}

// ---------------------------------------------------------------- names

#[test]
fn a_tag_group_and_a_tag_are_created() {
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::CreateGroup {
                group: group("age"),
                name: "年龄段".to_string(),
            },
        ))
        .then_expect_events(vec![group_created("age", "年龄段")]);
    given(vec![group_created("age", "年龄段")])
        .when(Stamped::new(
            t(1, 10),
            create_tag("age-25", "age", "25-30岁"),
        ))
        .then_expect_events(vec![tag_created("age-25", "age", "25-30岁")]);
}

#[test]
fn a_tag_name_of_30_characters_is_accepted() {
    let name = "金".repeat(rules::TAG_NAME_MAX_CHARS);
    given(library())
        .when(Stamped::new(t(1, 10), create_tag("long", "age", &name)))
        .then_expect_events(vec![tag_created("long", "age", &name)]);
}

#[test]
fn a_tag_name_of_31_characters_is_rejected() {
    given(library())
        .when(Stamped::new(
            t(1, 10),
            create_tag("long", "age", &"金".repeat(31)),
        ))
        .then_expect_error(TagLibraryError::NameTooLong { chars: 31, max: 30 });
}

#[test]
fn a_blank_tag_name_is_rejected() {
    for name in ["", "   "] {
        given(library())
            .when(Stamped::new(t(1, 10), create_tag("blank", "age", name)))
            .then_expect_error(TagLibraryError::EmptyName);
    }
}

#[test]
fn a_tag_cannot_be_renamed_to_a_name_too_long_or_blank() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: "金".repeat(31),
            },
        ))
        .then_expect_error(TagLibraryError::NameTooLong { chars: 31, max: 30 });
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: " ".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::EmptyName);
}

#[test]
fn a_tag_group_name_follows_the_same_length_rules() {
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::CreateGroup {
                group: group("g"),
                name: "组".repeat(30),
            },
        ))
        .then_expect_events(vec![group_created("g", &"组".repeat(30))]);
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::CreateGroup {
                group: group("g"),
                name: "组".repeat(31),
            },
        ))
        .then_expect_error(TagLibraryError::NameTooLong { chars: 31, max: 30 });
    given(vec![])
        .when(Stamped::new(
            t(1, 9),
            C::CreateGroup {
                group: group("g"),
                name: String::new(),
            },
        ))
        .then_expect_error(TagLibraryError::EmptyName);
}

// ---------------------------------------------------------------- 3,000 tags per tenant

#[test]
fn the_3000th_tag_of_a_tenant_is_allowed() {
    given(library_with_tags(2_999))
        .when(Stamped::new(
            t(2, 10),
            create_tag("last", "bulk", "最后一个"),
        ))
        .then_expect_events(vec![E::TagCreated {
            tag: tag("last"),
            group: group("bulk"),
            name: "最后一个".to_string(),
            at: t(2, 10),
        }]);
}

#[test]
fn the_3001st_tag_of_a_tenant_is_rejected() {
    given(library_with_tags(rules::MAX_TAGS_PER_TENANT))
        .when(Stamped::new(
            t(2, 10),
            create_tag("extra", "bulk", "多一个"),
        ))
        .then_expect_error(TagLibraryError::TooManyTags(3_000));
}

#[test]
fn the_limit_counts_tags_across_all_groups() {
    let mut events = library_with_tags(3_000);
    events.push(group_created("other", "其他"));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            create_tag("extra", "other", "多一个"),
        ))
        .then_expect_error(TagLibraryError::TooManyTags(3_000));
}

#[test]
fn after_a_tag_is_deleted_a_new_one_is_allowed_at_the_limit() {
    let mut events = library_with_tags(3_000);
    events.push(tag_deleted("t17", t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            create_tag("extra", "bulk", "多一个"),
        ))
        .then_expect_events(vec![E::TagCreated {
            tag: tag("extra"),
            group: group("bulk"),
            name: "多一个".to_string(),
            at: t(2, 10),
        }]);
}

#[test]
fn deleting_a_group_frees_its_tags_from_the_limit() {
    let mut events = library_with_tags(3_000);
    events.push(tag_deleted("t0", t(2, 9)));
    events.push(tag_deleted("t1", t(2, 9)));
    events.push(group_created("other", "其他"));
    events.push(tag_created("x", "other", "X"));
    events.push(tag_created("y", "other", "Y"));
    // At the limit again; deleting "other" frees two slots.
    events.push(tag_deleted("x", t(2, 10)));
    events.push(tag_deleted("y", t(2, 10)));
    events.push(E::TagGroupDeleted {
        group: group("other"),
        at: t(2, 10),
    });
    assert_eq!(replay(events.clone()).active_tags(), 2_998);
    given(events)
        .when(Stamped::new(
            t(2, 11),
            create_tag("extra", "bulk", "多一个"),
        ))
        .then_expect_events(vec![E::TagCreated {
            tag: tag("extra"),
            group: group("bulk"),
            name: "多一个".to_string(),
            at: t(2, 11),
        }]);
}

#[test]
fn a_tag_deleted_twice_in_the_log_is_counted_once() {
    let mut events = library_with_tags(3);
    events.push(tag_deleted("t0", t(2, 9)));
    events.push(tag_deleted("t0", t(2, 10)));
    assert_eq!(replay(events).active_tags(), 2);
}

// ---------------------------------------------------------------- deleted tags and ids

#[test]
fn a_tag_can_be_renamed_and_deleted() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: "25-29岁".to_string(),
            },
        ))
        .then_expect_events(vec![E::TagRenamed {
            tag: tag("age-25"),
            name: "25-29岁".to_string(),
            at: t(2, 10),
        }]);
    given(library())
        .when(Stamped::new(t(2, 10), C::DeleteTag { tag: tag("age-25") }))
        .then_expect_events(vec![tag_deleted("age-25", t(2, 10))]);
}

#[test]
fn a_deleted_tag_cannot_be_renamed() {
    let mut events = library();
    events.push(tag_deleted("age-25", t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: "25-29岁".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::Deleted);
}

#[test]
fn a_deleted_tag_cannot_be_deleted_again() {
    let mut events = library();
    events.push(tag_deleted("age-25", t(2, 9)));
    given(events)
        .when(Stamped::new(t(2, 10), C::DeleteTag { tag: tag("age-25") }))
        .then_expect_error(TagLibraryError::Deleted);
}

#[test]
fn an_unknown_tag_cannot_be_renamed_or_deleted() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("nope"),
                name: "名字".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::UnknownTag);
    given(library())
        .when(Stamped::new(t(2, 10), C::DeleteTag { tag: tag("nope") }))
        .then_expect_error(TagLibraryError::UnknownTag);
}

#[test]
fn a_tag_id_cannot_be_used_twice() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            create_tag("age-25", "style", "新风格"),
        ))
        .then_expect_error(TagLibraryError::IdTaken);
}

#[test]
fn a_tag_id_is_never_reused_even_after_deletion() {
    let mut events = library();
    events.push(tag_deleted("age-25", t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            create_tag("age-25", "age", "25-30岁"),
        ))
        .then_expect_error(TagLibraryError::IdTaken);
}

#[test]
fn a_tag_group_id_is_never_reused_even_after_deletion() {
    let mut events = library();
    events.push(E::TagGroupDeleted {
        group: group("style"),
        at: t(2, 9),
    });
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::CreateGroup {
                group: group("style"),
                name: "新风格".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::IdTaken);
}

// ---------------------------------------------------------------- duplicate names

#[test]
fn two_active_tags_of_a_group_cannot_share_a_name() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            create_tag("age-x", "age", "25-30岁"),
        ))
        .then_expect_error(TagLibraryError::DuplicateName);
}

#[test]
fn the_same_tag_name_in_another_group_is_fine() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            create_tag("style-x", "style", "25-30岁"),
        ))
        .then_expect_events(vec![E::TagCreated {
            tag: tag("style-x"),
            group: group("style"),
            name: "25-30岁".to_string(),
            at: t(2, 10),
        }]);
}

#[test]
fn the_name_of_a_deleted_tag_can_be_used_again() {
    let mut events = library();
    events.push(tag_deleted("age-25", t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            create_tag("age-25b", "age", "25-30岁"),
        ))
        .then_expect_events(vec![E::TagCreated {
            tag: tag("age-25b"),
            group: group("age"),
            name: "25-30岁".to_string(),
            at: t(2, 10),
        }]);
}

#[test]
fn a_tag_cannot_be_renamed_to_the_name_of_another_tag_of_its_group() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: "30-40岁".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::DuplicateName);
}

#[test]
fn a_tag_can_be_renamed_to_its_own_name() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameTag {
                tag: tag("age-25"),
                name: "25-30岁".to_string(),
            },
        ))
        .then_expect_events(vec![E::TagRenamed {
            tag: tag("age-25"),
            name: "25-30岁".to_string(),
            at: t(2, 10),
        }]);
}

#[test]
fn two_active_tag_groups_cannot_share_a_name() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::CreateGroup {
                group: group("age2"),
                name: "年龄段".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::DuplicateName);
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameGroup {
                group: group("style"),
                name: "年龄段".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::DuplicateName);
}

// ---------------------------------------------------------------- groups

#[test]
fn a_tag_cannot_be_created_in_an_unknown_group() {
    given(library())
        .when(Stamped::new(t(2, 10), create_tag("x", "nope", "名字")))
        .then_expect_error(TagLibraryError::UnknownGroup);
}

#[test]
fn a_tag_cannot_be_created_in_a_deleted_group() {
    let mut events = library();
    events.push(tag_deleted("classic", t(2, 9)));
    events.push(E::TagGroupDeleted {
        group: group("style"),
        at: t(2, 9),
    });
    given(events)
        .when(Stamped::new(t(2, 10), create_tag("x", "style", "名字")))
        .then_expect_error(TagLibraryError::Deleted);
}

#[test]
fn deleting_a_group_deletes_each_of_its_live_tags_first() {
    let mut events = library();
    events.push(tag_created("age-40", "age", "40岁以上"));
    events.push(tag_deleted("age-30", t(2, 9)));
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::DeleteGroup {
                group: group("age"),
            },
        ))
        .then_expect_events(vec![
            tag_deleted("age-25", t(2, 10)),
            tag_deleted("age-40", t(2, 10)),
            E::TagGroupDeleted {
                group: group("age"),
                at: t(2, 10),
            },
        ]);
}

#[test]
fn deleting_an_empty_group_emits_only_the_group_deletion() {
    given(vec![group_created("empty", "空组")])
        .when(Stamped::new(
            t(2, 10),
            C::DeleteGroup {
                group: group("empty"),
            },
        ))
        .then_expect_events(vec![E::TagGroupDeleted {
            group: group("empty"),
            at: t(2, 10),
        }]);
}

#[test]
fn a_deleted_group_cannot_be_deleted_or_renamed() {
    let mut events = library();
    events.push(tag_deleted("classic", t(2, 9)));
    events.push(E::TagGroupDeleted {
        group: group("style"),
        at: t(2, 9),
    });
    given(events.clone())
        .when(Stamped::new(
            t(2, 10),
            C::DeleteGroup {
                group: group("style"),
            },
        ))
        .then_expect_error(TagLibraryError::Deleted);
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::RenameGroup {
                group: group("style"),
                name: "新风格".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::Deleted);
}

#[test]
fn an_unknown_group_cannot_be_deleted_or_renamed() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::DeleteGroup {
                group: group("nope"),
            },
        ))
        .then_expect_error(TagLibraryError::UnknownGroup);
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::RenameGroup {
                group: group("nope"),
                name: "名字".to_string(),
            },
        ))
        .then_expect_error(TagLibraryError::UnknownGroup);
}

#[test]
fn the_name_of_a_deleted_group_can_be_used_again() {
    let mut events = library();
    events.push(tag_deleted("classic", t(2, 9)));
    events.push(E::TagGroupDeleted {
        group: group("style"),
        at: t(2, 9),
    });
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::CreateGroup {
                group: group("style2"),
                name: "风格".to_string(),
            },
        ))
        .then_expect_events(vec![E::TagGroupCreated {
            group: group("style2"),
            name: "风格".to_string(),
            at: t(2, 10),
        }]);
}

// ---------------------------------------------------------------- tag_state

#[test]
fn tag_state_reports_active_deleted_and_unknown_tags() {
    let mut events = library();
    events.push(tag_deleted("age-30", t(2, 9)));
    let library = replay(events);
    assert_eq!(library.tag_state(&tag("age-25")), TagState::Active);
    assert_eq!(library.tag_state(&tag("age-30")), TagState::Deleted);
    assert_eq!(library.tag_state(&tag("nope")), TagState::Unknown);
}

#[test]
fn tags_of_a_deleted_group_report_deleted() {
    let library = replay(library());
    let events = library
        .decide(
            C::DeleteGroup {
                group: group("age"),
            },
            t(2, 10),
        )
        .unwrap();
    let mut after = library.clone();
    for event in events {
        after.apply(event);
    }
    assert_eq!(after.tag_state(&tag("age-25")), TagState::Deleted);
    assert_eq!(after.tag_state(&tag("age-30")), TagState::Deleted);
    assert_eq!(after.tag_state(&tag("classic")), TagState::Active);
    assert_eq!(after.active_tags(), 1);
}

// ---------------------------------------------------------------- order

#[test]
fn ordering_groups_records_only_the_groups_whose_order_changed() {
    let mut events = library();
    events.push(E::TagGroupsOrdered {
        order: vec![(group("style"), 5)],
        at: t(2, 9),
    });
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::OrderGroups {
                order: vec![(group("age"), 9), (group("style"), 5)],
            },
        ))
        .then_expect_events(vec![E::TagGroupsOrdered {
            order: vec![(group("age"), 9)],
            at: t(2, 10),
        }]);
}

#[test]
fn an_order_that_changes_nothing_leaves_no_event() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::OrderTags {
                group: group("age"),
                order: vec![(tag("age-25"), 0), (tag("age-30"), 0)],
            },
        ))
        .then_expect_events(vec![]);
}

#[test]
fn ordering_tags_records_their_new_order_within_the_group() {
    let mut events = library();
    events.push(E::TagsOrdered {
        group: group("age"),
        order: vec![(tag("age-25"), 2), (tag("age-30"), 1)],
        at: t(2, 10),
    });
    let library = replay(events);
    assert_eq!(library.tag(&tag("age-25")).unwrap().order, 2);
    assert_eq!(library.tag(&tag("age-30")).unwrap().order, 1);
    assert_eq!(library.tag(&tag("classic")).unwrap().order, 0);
    given(self::library())
        .when(Stamped::new(
            t(2, 10),
            C::OrderTags {
                group: group("age"),
                order: vec![(tag("age-25"), 2), (tag("age-30"), 1)],
            },
        ))
        .then_expect_events(vec![E::TagsOrdered {
            group: group("age"),
            order: vec![(tag("age-25"), 2), (tag("age-30"), 1)],
            at: t(2, 10),
        }]);
}

#[test]
fn ordering_a_tag_of_another_group_is_rejected() {
    given(library())
        .when(Stamped::new(
            t(2, 10),
            C::OrderTags {
                group: group("age"),
                order: vec![(tag("classic"), 3)],
            },
        ))
        .then_expect_error(TagLibraryError::TagNotInGroup);
}

#[test]
fn ordering_unknown_deleted_or_repeated_entries_is_rejected() {
    let mut events = library();
    events.push(tag_deleted("age-30", t(2, 9)));
    given(events.clone())
        .when(Stamped::new(
            t(2, 10),
            C::OrderGroups {
                order: vec![(group("nope"), 1)],
            },
        ))
        .then_expect_error(TagLibraryError::UnknownGroup);
    given(events.clone())
        .when(Stamped::new(
            t(2, 10),
            C::OrderTags {
                group: group("age"),
                order: vec![(tag("age-30"), 1)],
            },
        ))
        .then_expect_error(TagLibraryError::Deleted);
    given(events)
        .when(Stamped::new(
            t(2, 10),
            C::OrderGroups {
                order: vec![(group("age"), 1), (group("age"), 2)],
            },
        ))
        .then_expect_error(TagLibraryError::DuplicateEntry);
}
