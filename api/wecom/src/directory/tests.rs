//! Given a staff member's stream, when the directory says something about them, then
//! the one command that brings the engine in line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::staff::{Staff, StaffCommand, StaffEvent};
use domain::values::StoreId;

use super::{change, full_listing, key, listed, root, store_of, Listed};
use crate::client::{Department, DirectoryUser};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_323_200, 0).unwrap()
}

fn store(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}

fn given(events: Vec<StaffEvent>) -> Staff {
    let mut staff = Staff::default();
    for event in events {
        staff.apply(event);
    }
    staff
}

fn registered(at_store: &str) -> StaffEvent {
    StaffEvent::StaffRegistered {
        name: "Li".into(),
        store: store(at_store),
        title: "guide".into(),
        customer_limit: 5000,
        at: at(),
    }
}

fn present(at_store: &str) -> Listed {
    Listed::Present {
        name: "Li".into(),
        store: store(at_store),
        title: "guide".into(),
    }
}

#[test]
fn an_unregistered_member_of_the_directory_is_registered_in_their_departments_store() {
    assert_eq!(
        change(&given(vec![]), &present("s1")),
        Some(StaffCommand::Register {
            name: "Li".into(),
            store: store("s1"),
            title: "guide".into()
        })
    );
}

#[test]
fn a_member_whose_department_maps_to_another_store_moves_there() {
    assert_eq!(
        change(&given(vec![registered("s1")]), &present("s2")),
        Some(StaffCommand::MoveToStore { store: store("s2") })
    );
    assert_eq!(change(&given(vec![registered("s1")]), &present("s1")), None);
}

#[test]
fn a_member_gone_from_the_directory_departs_once() {
    assert_eq!(
        change(&given(vec![registered("s1")]), &Listed::Gone),
        Some(StaffCommand::MarkDeparted)
    );
    let departed = given(vec![
        registered("s1"),
        StaffEvent::StaffDeparted { at: at() },
    ]);
    assert_eq!(change(&departed, &Listed::Gone), None);
    assert_eq!(change(&given(vec![]), &Listed::Gone), None);
}

#[test]
fn a_departed_member_listed_again_is_neither_registered_nor_moved() {
    let departed = given(vec![
        registered("s1"),
        StaffEvent::StaffDeparted { at: at() },
    ]);
    assert_eq!(change(&departed, &present("s2")), None);
}

#[test]
fn an_unmapped_department_is_a_store_of_its_own() {
    let mapped = BTreeMap::from([(7, store("shanghai-1"))]);
    assert_eq!(store_of(7, &mapped), store("shanghai-1"));
    assert_eq!(store_of(8, &mapped), store("dept-8"));
}

#[test]
fn keys_name_the_change_and_a_move_its_version() {
    let register = StaffCommand::Register {
        name: "Li".into(),
        store: store("s1"),
        title: String::new(),
    };
    assert_eq!(key("li", &register, 0), "wecom-directory:li:register");
    let move_to = StaffCommand::MoveToStore { store: store("s2") };
    assert_ne!(key("li", &move_to, 1), key("li", &move_to, 3));
    assert_eq!(
        key("li", &StaffCommand::MarkDeparted, 4),
        "wecom-directory:li:depart"
    );
}

fn directory_user(name: &str, main: Option<i64>, status: i64) -> DirectoryUser {
    DirectoryUser {
        userid: "li".into(),
        name: name.into(),
        department: vec![1, 9],
        main_department: main,
        position: "guide".into(),
        status,
        gender: String::new(),
        avatar: String::new(),
    }
}

#[test]
fn a_listing_places_staff_in_their_main_department_and_exits_them() {
    let mapped = BTreeMap::from([(2, store("s1"))]);
    assert_eq!(
        listed(&directory_user("Li", Some(2), 1), &mapped),
        present("s1")
    );
    // Disabled and not activated are still employed; without a main department, the
    // first one; without a name, the userid.
    assert_eq!(
        listed(&directory_user(" ", None, DirectoryUser::DISABLED), &mapped),
        Listed::Present {
            name: "li".into(),
            store: store("dept-1"),
            title: "guide".into()
        }
    );
    assert_eq!(
        listed(
            &directory_user("Li", Some(2), DirectoryUser::EXITED),
            &mapped
        ),
        Listed::Gone
    );
}

#[test]
fn the_root_is_the_department_whose_parent_is_not_listed() {
    let department = |id, parentid| Department {
        id,
        name: String::new(),
        name_en: String::new(),
        parentid,
        order: 0,
    };
    assert_eq!(root(&[department(2, 1), department(1, 0)]), Some(1));
    // A listing below the corp's root (an app with a narrower range).
    assert_eq!(root(&[department(3, 2), department(4, 3)]), Some(3));
    assert_eq!(root(&[]), None);
}

#[test]
fn staff_the_engine_knows_and_a_full_listing_lacks_are_gone() {
    let everyone = full_listing(
        vec!["li".into(), "wang".into()],
        &[directory_user("Li", Some(2), 1)],
        &BTreeMap::new(),
    );
    assert_eq!(everyone["li"], present("dept-2"));
    assert_eq!(everyone["wang"], Listed::Gone);
    assert_eq!(everyone.len(), 2);
}
