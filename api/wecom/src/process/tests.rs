use cqrs_es::Aggregate;
use domain::customer::{AddWay, Relation, RemovedBy};
use domain::group::{CustomerGroup, GroupCommand, Member};
use domain::tags::{TagLibrary, TagLibraryCommand};
use domain::values::{TagGroupId, TagId};

use super::tags::tags_answered;
use super::*;
use crate::notice::{Notice, NoticeKind};

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
    wecom.follow_user[0].relation.add_way = Some(1);
    wecom.follow_user[0].relation.state = Some("store-qr".into());

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
            Step::Customer { part, .. } | Step::Group { part, .. } | Step::Tags { part, .. } => {
                part.clone().unwrap_or_default()
            }
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

fn directory(change: &str, extra: &str) -> Notice {
    notice(&format!(
        "<xml><ToUserName>corp</ToUserName><FromUserName>sys</FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
         <Event>change_contact</Event><ChangeType>{change}</ChangeType>{extra}</xml>"
    ))
}

fn unhandled_reason(p: Plan) -> String {
    match p {
        Plan::Unhandled(reason) => reason,
        other => panic!("expected unhandled, got {other:?}"),
    }
}

#[test]
fn staff_notices_map_to_their_main_departments_store_or_a_departure() {
    let created = directory(
        "create_user",
        "<UserID>zhangsan</UserID><Name>张三</Name><Department>1,2</Department>\
         <MainDepartment>2</MainDepartment><Position>导购</Position>",
    );
    assert_eq!(subject(&created.kind), Some("zhangsan"));
    assert_eq!(
        steps_of(plan(&created)),
        vec![Step::Directory(DirectoryStep::Staff {
            staff: staff_id("zhangsan"),
            name: Some("张三".into()),
            department: 2,
            title: Some("导购".into()),
        })]
    );
    // Without MainDepartment: the first department.
    let moved = directory(
        "update_user",
        "<UserID>zhangsan</UserID><Department>3,2</Department>",
    );
    assert!(matches!(
        &steps_of(plan(&moved))[0],
        Step::Directory(DirectoryStep::Staff { department: 3, .. })
    ));
    for gone in [
        directory("delete_user", "<UserID>zhangsan</UserID>"),
        directory("update_user", "<UserID>zhangsan</UserID><Status>5</Status>"),
    ] {
        assert_eq!(
            steps_of(plan(&gone)),
            vec![Step::Directory(DirectoryStep::Gone {
                staff: staff_id("zhangsan")
            })]
        );
    }
}

#[test]
fn staff_notices_the_engine_keeps_nothing_of_say_why() {
    let renamed = directory(
        "update_user",
        "<UserID>zhangsan</UserID><Name>张三丰</Name>",
    );
    assert!(unhandled_reason(plan(&renamed)).contains("no Department"));
    let new_id = directory(
        "update_user",
        "<UserID>zhangsan</UserID><NewUserID>zhangsan2</NewUserID><Department>2</Department>",
    );
    assert!(unhandled_reason(plan(&new_id)).contains("NewUserID"));
    assert_eq!(kind_name(&new_id.kind), "change_contact/update_user");
}

#[test]
fn department_notices_keep_the_fields_they_carry() {
    let created = directory(
        "create_party",
        "<Id>5</Id><Name>East</Name><ParentId>1</ParentId><Order>3</Order>",
    );
    assert_eq!(kind_name(&created.kind), "change_contact/create_party");
    assert_eq!(
        steps_of(plan(&created)),
        vec![Step::Directory(DirectoryStep::Department {
            id: 5,
            name: Some("East".into()),
            parent: Some(1),
            order: Some(3),
        })]
    );
    let updated = directory("update_party", "<Id>5</Id><ParentId>2</ParentId>");
    assert_eq!(
        steps_of(plan(&updated)),
        vec![Step::Directory(DirectoryStep::Department {
            id: 5,
            name: None,
            parent: Some(2),
            order: None,
        })]
    );
    let deleted = directory("delete_party", "<Id>5</Id>");
    assert_eq!(subject(&deleted.kind), subject(&created.kind));
    assert_eq!(
        steps_of(plan(&deleted)),
        vec![Step::Directory(DirectoryStep::DepartmentDeleted { id: 5 })]
    );
}
