//! Notices: the shared documentation payloads, this crate's own payloads for the other event
//! types, JSON and third-party envelopes, malformed bodies, and the dedup key.

use std::path::Path;

use wecom::{ChatUpdate, Envelope, Notice, NoticeKind, ParseError, TagType, TransferFailReason};

use crate::common;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(dir: &Path, name: &str) -> (String, Notice) {
    let text = read(dir, name);
    let notice = Notice::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (text, notice)
}

/// The field by the independent string-search oracle; panics if the file lacks it.
fn field(xml: &str, tag: &str) -> String {
    common::tag_text(xml, tag).unwrap_or_else(|| panic!("payload has no <{tag}>"))
}

fn opt_field(xml: &str, tag: &str) -> Option<String> {
    common::tag_text(xml, tag).filter(|s| !s.is_empty())
}

fn self_built(xml: &str) -> Envelope {
    Envelope::SelfBuilt {
        to_user: field(xml, "ToUserName"),
        from_user: field(xml, "FromUserName"),
        create_time: field(xml, "CreateTime").parse().unwrap(),
    }
}

fn third_party(xml: &str) -> Envelope {
    Envelope::ThirdParty {
        suite_id: field(xml, "SuiteId"),
        auth_corp_id: opt_field(xml, "AuthCorpId"),
        timestamp: field(xml, "TimeStamp").parse().unwrap(),
    }
}

fn envelope_of(xml: &str) -> Envelope {
    if xml.contains("<InfoType>") {
        third_party(xml)
    } else {
        self_built(xml)
    }
}

fn tag_type(xml: &str) -> TagType {
    match field(xml, "TagType").as_str() {
        "tag" => TagType::Tag,
        "tag_group" => TagType::TagGroup,
        other => panic!("unexpected TagType {other}"),
    }
}

fn u32_field(xml: &str, tag: &str) -> Option<u32> {
    opt_field(xml, tag).map(|s| s.parse().unwrap())
}

/// What a documented XML notice must parse to, computed from the file with the oracle and the
/// file name (`<event>.<change_type>[.<update_detail>][.<variant>].xml`).
fn expected_from_xml(name: &str, xml: &str) -> NoticeKind {
    let change_type = field(xml, "ChangeType");
    let event = opt_field(xml, "Event")
        .or_else(|| opt_field(xml, "InfoType"))
        .unwrap();
    assert!(
        name.contains(&format!("{event}.{change_type}")),
        "{name} names its event"
    );
    let staff_and_customer = || (field(xml, "UserID"), field(xml, "ExternalUserID"));
    match (event.as_str(), change_type.as_str()) {
        ("change_external_contact", "add_external_contact" | "add_half_external_contact") => {
            let (staff_id, external_user_id) = staff_and_customer();
            NoticeKind::ContactAdded {
                staff_id,
                external_user_id,
                state: opt_field(xml, "State"),
                welcome_code: opt_field(xml, "WelcomeCode"),
                half: change_type == "add_half_external_contact",
            }
        }
        ("change_external_contact", "edit_external_contact") => {
            let (staff_id, external_user_id) = staff_and_customer();
            NoticeKind::ContactEdited {
                staff_id,
                external_user_id,
            }
        }
        ("change_external_contact", "del_external_contact") => {
            let (staff_id, external_user_id) = staff_and_customer();
            NoticeKind::ContactDeleted {
                staff_id,
                external_user_id,
                by_transfer: opt_field(xml, "Source").as_deref() == Some("DELETE_BY_TRANSFER"),
            }
        }
        ("change_external_contact", "del_follow_user") => {
            let (staff_id, external_user_id) = staff_and_customer();
            NoticeKind::FollowUserDeleted {
                staff_id,
                external_user_id,
            }
        }
        ("change_external_contact", "transfer_fail") => {
            let (staff_id, external_user_id) = staff_and_customer();
            let fail_reason = opt_field(xml, "FailReason").map(|r| match r.as_str() {
                "customer_refused" => TransferFailReason::CustomerRefused,
                "customer_limit_exceed" => TransferFailReason::CustomerLimitExceed,
                other => TransferFailReason::Other(other.to_owned()),
            });
            NoticeKind::TransferFailed {
                staff_id,
                external_user_id,
                fail_reason,
            }
        }
        ("change_external_chat", "create") => NoticeKind::ChatCreated {
            chat_id: field(xml, "ChatId"),
        },
        ("change_external_chat", "dismiss") => NoticeKind::ChatDismissed {
            chat_id: field(xml, "ChatId"),
        },
        ("change_external_chat", "update") => {
            let detail = field(xml, "UpdateDetail");
            let mut member_ids = common::items(xml, "MemChangeList");
            if member_ids.is_empty() {
                // The older comma-separated form.
                member_ids = opt_field(xml, "MemChangeList")
                    .map(|s| s.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
            }
            let update = match detail.as_str() {
                "add_member" => ChatUpdate::AddMember {
                    join_scene: u32_field(xml, "JoinScene"),
                    mem_change_cnt: u32_field(xml, "MemChangeCnt"),
                    member_ids,
                },
                "del_member" => ChatUpdate::DelMember {
                    quit_scene: u32_field(xml, "QuitScene"),
                    mem_change_cnt: u32_field(xml, "MemChangeCnt"),
                    member_ids,
                },
                "change_owner" => ChatUpdate::ChangeOwner,
                "change_name" => ChatUpdate::ChangeName,
                "change_notice" => ChatUpdate::ChangeNotice,
                other => panic!("{name}: unexpected UpdateDetail {other}"),
            };
            NoticeKind::ChatUpdated {
                chat_id: field(xml, "ChatId"),
                update,
                last_mem_ver: opt_field(xml, "LastMemVer"),
                cur_mem_ver: opt_field(xml, "CurMemVer"),
            }
        }
        ("change_external_tag", "create") => NoticeKind::TagCreated {
            id: field(xml, "Id"),
            tag_type: tag_type(xml),
            strategy_id: opt_field(xml, "StrategyId"),
        },
        ("change_external_tag", "update") => NoticeKind::TagUpdated {
            id: field(xml, "Id"),
            tag_type: tag_type(xml),
            strategy_id: opt_field(xml, "StrategyId"),
        },
        ("change_external_tag", "delete") => NoticeKind::TagDeleted {
            id: field(xml, "Id"),
            tag_type: tag_type(xml),
            strategy_id: opt_field(xml, "StrategyId"),
        },
        ("change_external_tag", "shuffle") => NoticeKind::TagShuffled {
            group_id: opt_field(xml, "Id"),
            strategy_id: opt_field(xml, "StrategyId"),
        },
        ("change_contact", "create_user" | "update_user") => NoticeKind::StaffChanged {
            user_id: field(xml, "UserID"),
            new_user_id: opt_field(xml, "NewUserID"),
            name: opt_field(xml, "Name"),
            departments: opt_field(xml, "Department")
                .map(|d| d.split(',').map(|d| d.trim().parse().unwrap()).collect())
                .unwrap_or_default(),
            main_department: opt_field(xml, "MainDepartment").map(|d| d.parse().unwrap()),
            position: opt_field(xml, "Position"),
            status: opt_field(xml, "Status").map(|d| d.parse().unwrap()),
            created: change_type == "create_user",
        },
        (event, change_type) => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type.to_owned()),
        },
    }
}

#[test]
fn every_shared_callback_parses_to_what_its_fields_say() {
    let dir = common::shared_dir().join("callbacks");
    let names = common::file_names(&dir);
    assert!(
        names.len() >= 8,
        "expected the shared callbacks, found {names:?}"
    );
    for name in &names {
        let (xml, notice) = parse(&dir, name);
        assert_eq!(notice.envelope, envelope_of(&xml), "{name}");
        let expected = expected_from_xml(name, &xml);
        assert!(
            !matches!(expected, NoticeKind::Unknown { .. }),
            "{name}: documented event"
        );
        assert_eq!(notice.kind, expected, "{name}");
    }
}

#[test]
fn shared_callbacks_spot_checks() {
    // Hand-written expectations for the same files, so a bug shared by parser and oracle shows.
    let dir = common::shared_dir().join("callbacks");
    let kind = |name: &str| parse(&dir, name).1.kind;

    assert_eq!(
        kind("change_external_contact.add_external_contact.xml"),
        NoticeKind::ContactAdded {
            staff_id: "zhangsan".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA".into(),
            state: Some("teststate".into()),
            welcome_code: Some("WELCOMECODE".into()),
            half: false,
        }
    );
    assert!(matches!(
        kind("change_external_contact.add_half_external_contact.xml"),
        NoticeKind::ContactAdded { half: true, ref external_user_id, .. }
            if external_user_id == "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
    ));
    assert_eq!(
        kind("change_external_contact.del_external_contact.xml"),
        NoticeKind::ContactDeleted {
            staff_id: "zhangsan".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA".into(),
            by_transfer: true,
        }
    );
    assert_eq!(
        kind("change_external_contact.del_follow_user.xml"),
        NoticeKind::FollowUserDeleted {
            staff_id: "zhangsan".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA".into(),
        }
    );
    assert_eq!(
        kind("change_external_contact.edit_external_contact.xml"),
        NoticeKind::ContactEdited {
            staff_id: "zhangsan".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA".into(),
        }
    );
    assert_eq!(
        kind("change_external_chat.create.xml"),
        NoticeKind::ChatCreated {
            chat_id: "CHAT_ID".into()
        }
    );
    assert_eq!(
        kind("change_external_chat.update.add_member.xml"),
        NoticeKind::ChatUpdated {
            chat_id: "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ".into(),
            update: ChatUpdate::AddMember {
                join_scene: Some(1),
                mem_change_cnt: Some(10),
                member_ids: vec!["Jack".into(), "Rose".into()],
            },
            last_mem_ver: Some("9c3f97c2ada667dfb5f6d03308d963e1".into()),
            cur_mem_ver: Some("71217227bbd112ecfe3a49c482195cb4".into()),
        }
    );
    assert_eq!(
        kind("change_external_tag.create.xml"),
        NoticeKind::TagCreated {
            id: "TAG_ID".into(),
            tag_type: TagType::Tag,
            strategy_id: Some("1".into()),
        }
    );
    let (_, n) = parse(&dir, "change_external_chat.update.add_member.xml");
    assert_eq!(n.envelope.corp_id(), Some("ww55ca070cb9b7eb22"));
    assert_eq!(n.envelope.time(), 1_403_610_513);
}

/// Own XML payloads (documented event types beyond the shared ones, third-party envelopes,
/// unknown events): each checked against the oracle and against hand-written values.
#[test]
fn own_xml_payloads_parse_to_what_their_fields_say() {
    let dir = common::payload_dir();
    let names: Vec<String> = common::file_names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".xml"))
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    for name in &names {
        let (xml, notice) = parse(&dir, name);
        assert_eq!(notice.envelope, envelope_of(&xml), "{name}");
        if name == "text_message.xml" || name == "third_party.suite_ticket.xml" {
            continue; // not customer-contact events; checked below
        }
        assert_eq!(notice.kind, expected_from_xml(name, &xml), "{name}");
    }
}

#[test]
fn own_payloads_spot_checks() {
    let dir = common::payload_dir();
    let kind = |name: &str| parse(&dir, name).1.kind;

    assert_eq!(
        kind("change_external_contact.transfer_fail.xml"),
        NoticeKind::TransferFailed {
            staff_id: "zhangsan".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA".into(),
            fail_reason: Some(TransferFailReason::CustomerRefused),
        }
    );
    assert_eq!(
        kind("change_external_contact.transfer_fail.limit.xml"),
        NoticeKind::TransferFailed {
            staff_id: "lisi".into(),
            external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACHBBB".into(),
            fail_reason: Some(TransferFailReason::CustomerLimitExceed),
        }
    );
    assert_eq!(
        kind("change_external_chat.update.del_member.xml"),
        NoticeKind::ChatUpdated {
            chat_id: "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ".into(),
            update: ChatUpdate::DelMember {
                quit_scene: Some(1),
                mem_change_cnt: Some(1),
                member_ids: vec!["wmAJ2GCAAAXtWyujaWJHDDGi0mACHAAA".into()],
            },
            last_mem_ver: Some("71217227bbd112ecfe3a49c482195cb4".into()),
            cur_mem_ver: Some("a1c5ff8ef2a1c5b1b3a3e7c5c0f2c3d4".into()),
        }
    );
    assert_eq!(
        kind("change_external_chat.update.add_member.legacy.xml"),
        NoticeKind::ChatUpdated {
            chat_id: "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ".into(),
            update: ChatUpdate::AddMember {
                join_scene: Some(3),
                mem_change_cnt: Some(2),
                member_ids: vec!["Jack".into(), "Rose".into()],
            },
            last_mem_ver: None,
            cur_mem_ver: None,
        }
    );
    for (file, update) in [
        ("change_owner", ChatUpdate::ChangeOwner),
        ("change_name", ChatUpdate::ChangeName),
        ("change_notice", ChatUpdate::ChangeNotice),
    ] {
        assert_eq!(
            kind(&format!("change_external_chat.update.{file}.xml")),
            NoticeKind::ChatUpdated {
                chat_id: "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ".into(),
                update,
                last_mem_ver: None,
                cur_mem_ver: None,
            }
        );
    }
    assert_eq!(
        kind("change_external_chat.dismiss.xml"),
        NoticeKind::ChatDismissed {
            chat_id: "CHAT_ID".into()
        }
    );
    assert_eq!(
        kind("change_external_tag.update.xml"),
        NoticeKind::TagUpdated {
            id: "TAG_GROUP_ID".into(),
            tag_type: TagType::TagGroup,
            strategy_id: Some("1".into()),
        }
    );
    assert_eq!(
        kind("change_external_tag.delete.xml"),
        NoticeKind::TagDeleted {
            id: "TAG_ID".into(),
            tag_type: TagType::Tag,
            strategy_id: None
        }
    );
    assert_eq!(
        kind("change_external_tag.shuffle.xml"),
        NoticeKind::TagShuffled {
            group_id: Some("TAG_GROUP_ID".into()),
            strategy_id: Some("STRATEGY_ID".into()),
        }
    );
    assert_eq!(
        kind("change_external_tag.shuffle.all.xml"),
        NoticeKind::TagShuffled {
            group_id: None,
            strategy_id: None
        }
    );
    assert_eq!(
        kind("change_contact.create_user.xml"),
        NoticeKind::StaffChanged {
            user_id: "zhangsan".into(),
            new_user_id: None,
            name: Some("张三".into()),
            departments: vec![],
            main_department: None,
            position: None,
            status: None,
            created: true,
        }
    );
    assert_eq!(
        kind("change_external_contact.msg_audit_approved.xml"),
        NoticeKind::Unknown {
            event: "change_external_contact".into(),
            change_type: Some("msg_audit_approved".into()),
        }
    );
    let (_, text) = parse(&dir, "text_message.xml");
    assert_eq!(
        text.kind,
        NoticeKind::Unknown {
            event: "text".into(),
            change_type: None
        }
    );
    assert_eq!(
        text.envelope,
        Envelope::SelfBuilt {
            to_user: "toUser".into(),
            from_user: "fromUser".into(),
            create_time: 1_348_831_860,
        }
    );
}

#[test]
fn third_party_envelopes() {
    let dir = common::payload_dir();
    let suite = "ww4asffe99e54c0f4c".to_owned();
    let corp = Some("wxf8b4f85f3a794e77".to_owned());

    let (_, n) = parse(
        &dir,
        "third_party.change_external_contact.add_external_contact.xml",
    );
    assert_eq!(
        n,
        Notice {
            envelope: Envelope::ThirdParty {
                suite_id: suite.clone(),
                auth_corp_id: corp.clone(),
                timestamp: 1_403_610_513,
            },
            kind: NoticeKind::ContactAdded {
                staff_id: "zhangsan".into(),
                external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w".into(),
                state: Some("teststate".into()),
                welcome_code: Some("WELCOMECODE".into()),
                half: false,
            },
        }
    );
    assert_eq!(n.envelope.corp_id(), Some("wxf8b4f85f3a794e77"));

    let (_, n) = parse(
        &dir,
        "third_party.change_external_chat.update.add_member.xml",
    );
    assert_eq!(
        n.kind,
        NoticeKind::ChatUpdated {
            chat_id: "CHAT_ID".into(),
            update: ChatUpdate::AddMember {
                join_scene: Some(0),
                mem_change_cnt: Some(3),
                member_ids: vec!["wmAAA".into(), "wmBBB".into(), "woCCC".into()],
            },
            last_mem_ver: Some("9c3f97c2ada667dfb5f6d03308d963e1".into()),
            cur_mem_ver: Some("71217227bbd112ecfe3a49c482195cb4".into()),
        }
    );

    let (_, n) = parse(&dir, "third_party.change_external_tag.delete.xml");
    assert_eq!(
        n.kind,
        NoticeKind::TagDeleted {
            id: "TAG_GROUP_ID".into(),
            tag_type: TagType::TagGroup,
            strategy_id: None
        }
    );

    // A suite-level notice: no tenant, not a customer-contact event, still no error.
    let (_, n) = parse(&dir, "third_party.suite_ticket.xml");
    assert_eq!(
        n,
        Notice {
            envelope: Envelope::ThirdParty {
                suite_id: suite,
                auth_corp_id: None,
                timestamp: 1_403_610_513
            },
            kind: NoticeKind::Unknown {
                event: "suite_ticket".into(),
                change_type: None
            },
        }
    );
    assert_eq!(n.envelope.corp_id(), None);
}

#[test]
fn json_notices() {
    let dir = common::payload_dir();
    let names: Vec<String> = common::file_names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert!(names.len() >= 4, "{names:?}");

    let (_, n) = parse(&dir, "json.change_external_contact.del_follow_user.json");
    assert_eq!(
        n,
        Notice {
            envelope: Envelope::SelfBuilt {
                to_user: "toUser".into(),
                from_user: "sys".into(),
                create_time: 1_403_610_513,
            },
            kind: NoticeKind::FollowUserDeleted {
                staff_id: "zhangsan".into(),
                external_user_id: "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA".into(),
            },
        }
    );

    // Lower-case names, numbers as numbers or strings, the list as a JSON array.
    let (_, n) = parse(&dir, "json.change_external_chat.update.del_member.json");
    assert_eq!(
        n.kind,
        NoticeKind::ChatUpdated {
            chat_id: "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ".into(),
            update: ChatUpdate::DelMember {
                quit_scene: Some(0),
                mem_change_cnt: Some(2),
                member_ids: vec!["wmAAA".into(), "woBBB".into()],
            },
            last_mem_ver: Some("9c3f97c2ada667dfb5f6d03308d963e1".into()),
            cur_mem_ver: Some("71217227bbd112ecfe3a49c482195cb4".into()),
        }
    );
    assert_eq!(n.envelope.time(), 1_403_610_513);

    // The XML shape rendered as JSON ({"Item": [..]}) equals the documented XML notice.
    let (_, json) = parse(&dir, "json.change_external_chat.update.add_member.json");
    let shared = common::shared_dir().join("callbacks");
    let (_, xml) = parse(&shared, "change_external_chat.update.add_member.xml");
    assert_eq!(json, xml);

    let (_, n) = parse(&dir, "json.third_party.change_external_tag.create.json");
    assert_eq!(
        n,
        Notice {
            envelope: Envelope::ThirdParty {
                suite_id: "ww4asffe99e54c0f4c".into(),
                auth_corp_id: Some("wxf8b4f85f3a794e77".into()),
                timestamp: 1_403_610_513,
            },
            kind: NoticeKind::TagCreated {
                id: "TAG_ID".into(),
                tag_type: TagType::Tag,
                strategy_id: Some("7".into())
            },
        }
    );
}

#[test]
fn malformed_notices_are_clear_errors() {
    let dir = common::payload_dir().join("invalid");
    let err = |name: &str| Notice::parse(read(&dir, name).as_bytes()).unwrap_err();

    let e = err("missing_external_user_id.xml");
    assert_eq!(
        e,
        ParseError::MissingField {
            field: "ExternalUserID",
            context: "change_external_contact/add_external_contact".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "change_external_contact/add_external_contact: missing required field `ExternalUserID`"
    );
    assert!(matches!(err("unclosed_tag.xml"), ParseError::Xml(_)));
    assert!(matches!(
        err("bad_create_time.xml"),
        ParseError::InvalidField {
            field: "CreateTime",
            ..
        }
    ));
    assert!(matches!(
        err("third_party_without_auth_corp.xml"),
        ParseError::MissingField {
            field: "AuthCorpId",
            ..
        }
    ));
    assert!(matches!(
        err("missing_chat_id.json"),
        ParseError::MissingField {
            field: "ChatId",
            ..
        }
    ));
    assert!(matches!(
        err("tag_without_type.xml"),
        ParseError::MissingField {
            field: "TagType",
            ..
        }
    ));
    assert_eq!(
        err("duplicate_user.xml"),
        ParseError::DuplicateField("UserID".into())
    );
    assert!(matches!(err("json_array.json"), ParseError::Json(_)));

    assert_eq!(Notice::parse(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(Notice::parse(b" \n\t").unwrap_err(), ParseError::Empty);
    assert_eq!(
        Notice::parse(b"success").unwrap_err(),
        ParseError::UnknownFormat(b's')
    );
    assert!(matches!(
        Notice::parse(b"<xml><a>\xff</a></xml>").unwrap_err(),
        ParseError::Xml(_)
    ));
    assert!(matches!(
        Notice::parse(b"{\"Event\": ").unwrap_err(),
        ParseError::Json(_)
    ));
    // An envelope without its event.
    assert!(matches!(
        Notice::parse(b"<xml><ToUserName>t</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>").unwrap_err(),
        ParseError::MissingField { field: "Event", .. }
    ));
    // A known event without its ChangeType.
    assert!(matches!(
        Notice::parse(b"<xml><ToUserName>t</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_external_chat</Event></xml>").unwrap_err(),
        ParseError::MissingField { field: "ChangeType", .. }
    ));
}

#[test]
fn whitespace_cdata_and_bom_do_not_matter() {
    let dir = common::shared_dir().join("callbacks");
    let original = read(&dir, "change_external_contact.del_external_contact.xml");
    let (_, expected) = parse(&dir, "change_external_contact.del_external_contact.xml");
    let compact: String = original
        .lines()
        .map(str::trim)
        .collect::<String>()
        .replace("<![CDATA[", "")
        .replace("]]>", "");
    let spaced = original
        .replace('\t', "    ")
        .replace("</", " </")
        .replace('>', ">  \r\n");
    let with_bom = format!("\u{feff}\n{original}");
    for variant in [compact, spaced, with_bom] {
        assert_eq!(
            Notice::parse(variant.as_bytes()).unwrap(),
            expected,
            "{variant}"
        );
        assert_eq!(
            Notice::dedup_key(variant.as_bytes()),
            Notice::dedup_key(original.as_bytes())
        );
    }
}

#[test]
fn dedup_key_separates_distinct_notices_and_merges_redeliveries() {
    let shared = common::shared_dir().join("callbacks");
    let own = common::payload_dir();
    let mut keys = std::collections::BTreeMap::new();
    for (dir, name) in common::file_names(&shared)
        .into_iter()
        .map(|n| (shared.clone(), n))
        .chain(
            common::file_names(&own)
                .into_iter()
                .map(|n| (own.clone(), n)),
        )
    {
        let raw = read(&dir, &name);
        let key = Notice::dedup_key(raw.as_bytes());
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        // A redelivery is the same bytes.
        assert_eq!(key, Notice::dedup_key(raw.clone().as_bytes()));
        keys.entry(key).or_insert_with(Vec::new).push(name);
    }
    // The expected collisions: JSON renderings of documented XML notices.
    let same_notice = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    let allowed = [
        same_notice(
            "change_external_chat.update.add_member.xml",
            "json.change_external_chat.update.add_member.json",
        ),
        same_notice(
            "change_external_contact.del_follow_user.xml",
            "json.change_external_contact.del_follow_user.json",
        ),
    ];
    let collisions: Vec<&Vec<String>> = keys.values().filter(|names| names.len() > 1).collect();
    assert_eq!(collisions, allowed.iter().collect::<Vec<_>>());

    // Same user, same second, different change: different keys.
    let add = read(&shared, "change_external_contact.add_external_contact.xml");
    let edit = add.replace("add_external_contact", "edit_external_contact");
    assert_ne!(
        Notice::dedup_key(add.as_bytes()),
        Notice::dedup_key(edit.as_bytes())
    );
    // One character of one value differs: different keys.
    let other_state = add.replace("teststate", "teststatf");
    assert_ne!(
        Notice::dedup_key(add.as_bytes()),
        Notice::dedup_key(other_state.as_bytes())
    );
    // Field order does not matter.
    let reordered = add.replace(
        "\t<State><![CDATA[teststate]]></State>\n\t<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>\n",
        "\t<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>\n\t<State><![CDATA[teststate]]></State>\n",
    );
    assert_ne!(reordered, add);
    assert_eq!(
        Notice::dedup_key(add.as_bytes()),
        Notice::dedup_key(reordered.as_bytes())
    );
    // Unparseable bodies still get a key, by their bytes.
    assert_ne!(Notice::dedup_key(b"<xml"), Notice::dedup_key(b"<xml "));
}

/// A `change_contact` notice of `change` with `fields`, as WeCom's directory callbacks
/// document them.
fn directory_notice(change: &str, fields: &str) -> NoticeKind {
    let xml = format!(
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName>\
         <FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
         <ChangeType>{change}</ChangeType>{fields}</xml>"
    );
    Notice::parse(xml.as_bytes()).unwrap().kind
}

#[test]
fn every_directory_change_type_parses() {
    assert_eq!(
        directory_notice(
            "update_user",
            "<UserID><![CDATA[zhangsan]]></UserID><NewUserID><![CDATA[zhangsan001]]></NewUserID>\
             <Name><![CDATA[张三]]></Name><Department><![CDATA[1,2,3]]></Department>\
             <MainDepartment>1</MainDepartment><IsLeaderInDept><![CDATA[1,0,0]]></IsLeaderInDept>\
             <Position><![CDATA[产品经理]]></Position><Mobile>13800000000</Mobile>\
             <Gender>1</Gender><Email><![CDATA[zhangsan@gzdev.com]]></Email><Status>1</Status>\
             <Avatar><![CDATA[http://wx.qlogo.cn/mmopen/ajNVdqHZLLA3WJ6DSZUfiakYe37PKnQhBIeOQBO4czqrnZDS79FH5Wm5m4X69TBicnHFlhiafvDwklOpZeXYQQ2icg/0]]></Avatar>\
             <Alias><![CDATA[zhangsan]]></Alias><Telephone><![CDATA[020-123456]]></Telephone>\
             <ExtAttr><Item><Name><![CDATA[爱好]]></Name><Type>0</Type><Text>\
             <Value><![CDATA[旅游]]></Value></Text></Item></ExtAttr>"
        ),
        NoticeKind::StaffChanged {
            user_id: "zhangsan".into(),
            new_user_id: Some("zhangsan001".into()),
            name: Some("张三".into()),
            departments: vec![1, 2, 3],
            main_department: Some(1),
            position: Some("产品经理".into()),
            status: Some(1),
            created: false,
        }
    );
    assert_eq!(
        directory_notice("delete_user", "<UserID><![CDATA[zhangsan]]></UserID>"),
        NoticeKind::StaffDeleted {
            user_id: "zhangsan".into()
        }
    );
    assert_eq!(
        directory_notice(
            "create_party",
            "<Id>2</Id><Name><![CDATA[张三]]></Name><ParentId><![CDATA[1]]></ParentId><Order>1</Order>"
        ),
        NoticeKind::DepartmentChanged {
            id: 2,
            name: Some("张三".into()),
            parent_id: Some(1),
            order: Some(1),
            created: true,
        }
    );
    assert_eq!(
        directory_notice("update_party", "<Id>2</Id><Name><![CDATA[张三]]></Name>"),
        NoticeKind::DepartmentChanged {
            id: 2,
            name: Some("张三".into()),
            parent_id: None,
            order: None,
            created: false,
        }
    );
    assert_eq!(
        directory_notice("delete_party", "<Id>2</Id>"),
        NoticeKind::DepartmentDeleted { id: 2 }
    );
    assert_eq!(
        directory_notice("update_tag", "<TagId>1</TagId>"),
        NoticeKind::Unknown {
            event: "change_contact".into(),
            change_type: Some("update_tag".into()),
        }
    );
}

#[test]
fn a_directory_notice_without_its_ids_is_an_error() {
    let xml = "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName>\
        <CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event>\
        <ChangeType>delete_party</ChangeType></xml>";
    assert!(matches!(
        Notice::parse(xml.as_bytes()),
        Err(ParseError::MissingField { field: "Id", .. })
    ));
    let xml = xml.replace(
        "delete_party</ChangeType>",
        "create_user</ChangeType><Department>a</Department><UserID>u</UserID>",
    );
    assert!(matches!(
        Notice::parse(xml.as_bytes()),
        Err(ParseError::InvalidField {
            field: "Department",
            ..
        })
    ));
}
