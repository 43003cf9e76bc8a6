//! Properties: nothing panics on hostile input, and encryption round-trips. Case count comes
//! from PROPTEST_CASES (proptest's default, 256, otherwise).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use wecom::{outer_encrypt, percent_decode, signature, CallbackKeys, Notice};

use crate::common::{keys, KEY, TOKEN};

const NAMES: &[&str] = &[
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "ChangeType",
    "SuiteId",
    "AuthCorpId",
    "InfoType",
    "TimeStamp",
    "UserID",
    "ExternalUserID",
    "State",
    "WelcomeCode",
    "Source",
    "FailReason",
    "ChatId",
    "UpdateDetail",
    "JoinScene",
    "QuitScene",
    "MemChangeCnt",
    "MemChangeList",
    "LastMemVer",
    "CurMemVer",
    "Id",
    "TagType",
    "StrategyId",
    "Encrypt",
];

const VALUES: &[&str] = &[
    "event",
    "change_external_contact",
    "change_external_chat",
    "change_external_tag",
    "add_external_contact",
    "add_half_external_contact",
    "edit_external_contact",
    "del_external_contact",
    "del_follow_user",
    "transfer_fail",
    "create",
    "update",
    "dismiss",
    "delete",
    "shuffle",
    "add_member",
    "del_member",
    "change_owner",
    "tag",
    "tag_group",
    "1",
    "-5",
    "99999999999999999999",
    "",
    " ",
    "DELETE_BY_TRANSFER",
    "sys",
];

/// A flat notice-like XML document built from WeCom's own field names and values, so the parser
/// gets past the envelope and into every branch.
fn notice_like_xml() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        proptest::sample::select(VALUES).prop_map(str::to_owned),
        "[ -~]{0,12}".prop_map(|s| s.replace(['<', '&', ']'], "")),
    ];
    let field = (proptest::sample::select(NAMES), value, any::<u8>());
    proptest::collection::vec(field, 0..16).prop_map(|fields| {
        let mut xml = String::from("<xml>\n");
        for (name, value, style) in fields {
            match style % 4 {
                0 => xml.push_str(&format!("\t<{name}><![CDATA[{value}]]></{name}> \n")),
                1 => xml.push_str(&format!("<{name}>{value}</{name}>")),
                2 => xml.push_str(&format!(
                    "<{name}><Item>{value}</Item><Item>x</Item></{name}>"
                )),
                _ => xml.push_str(&format!("<{name}/>")),
            }
        }
        xml.push_str("</xml>");
        xml
    })
}

proptest! {
    #[test]
    fn outer_encrypt_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = outer_encrypt(&body);
    }

    #[test]
    fn outer_encrypt_never_panics_on_text(body in "\\PC{0,256}") {
        let _ = outer_encrypt(body.as_bytes());
    }

    #[test]
    fn decrypt_never_panics_on_strings(s in "\\PC{0,256}") {
        let _ = keys().decrypt(&s);
        let _ = keys().decrypt_any_receive_id(&s);
    }

    /// Valid base64 of any length, most of them whole AES blocks, so the AES and unpadding paths
    /// are reached with garbage.
    #[test]
    fn decrypt_never_panics_on_ciphertext(blocks in 0usize..8, extra in 0usize..3, seed in any::<u64>()) {
        let len = blocks * 16 + if extra == 0 { 0 } else { extra * 5 };
        let mut x = seed | 1;
        let bytes: Vec<u8> = (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
        let _ = keys().decrypt(&STANDARD.encode(bytes));
    }

    #[test]
    fn verify_url_never_panics(sig in "\\PC{0,48}", ts in "[0-9]{0,12}", nonce in "\\PC{0,12}", echostr in "\\PC{0,128}") {
        prop_assert!(keys().verify_url(&sig, &ts, &nonce, &echostr).is_err() || sig.len() == 40);
    }

    /// With a correct signature the input reaches decryption.
    #[test]
    fn verify_url_with_valid_signature_never_panics(ct in proptest::collection::vec(any::<u8>(), 0..160), nonce in "[0-9a-z]{1,10}") {
        let echostr = STANDARD.encode(&ct);
        let sig = signature(TOKEN, "1700000000", &nonce, &echostr);
        let _ = keys().verify_url(&sig, "1700000000", &nonce, &echostr);
    }

    #[test]
    fn notice_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Notice::parse(&body);
        let key = Notice::dedup_key(&body);
        prop_assert_eq!(key.len(), 64);
    }

    #[test]
    fn notice_parser_never_panics_on_notice_like_xml(xml in notice_like_xml()) {
        let _ = Notice::parse(xml.as_bytes());
        let _ = Notice::dedup_key(xml.as_bytes());
        let _ = outer_encrypt(xml.as_bytes());
    }

    #[test]
    fn notice_parser_never_panics_on_json(fields in proptest::collection::vec((proptest::sample::select(NAMES), proptest::sample::select(VALUES), any::<u8>()), 0..16)) {
        let members: Vec<String> = fields.iter().map(|(n, v, style)| match style % 5 {
            0 => format!("{n:?}: {v:?}"),
            1 => format!("{n:?}: [{v:?}, 3]"),
            2 => format!("{n:?}: {{\"Item\": {v:?}}}"),
            3 => format!("{n:?}: {{\"x\": [[{v:?}]]}}"),
            _ => format!("{n:?}: {}", v.len()),
        }).collect();
        let json = format!("{{{}}}", members.join(","));
        let _ = Notice::parse(json.as_bytes());
        let _ = outer_encrypt(json.as_bytes());
    }

    #[test]
    fn deep_nesting_does_not_overflow(depth in 1usize..2000) {
        let xml = format!("<xml>{}{}</xml>", "<a>".repeat(depth), "</a>".repeat(depth));
        let _ = Notice::parse(xml.as_bytes());
        let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let _ = Notice::parse(json.as_bytes());
    }

    #[test]
    fn encrypt_decrypt_round_trips(message in proptest::collection::vec(any::<u8>(), 0..2048), random in any::<[u8; 16]>(), rid in "[a-z0-9]{0,24}") {
        let k = CallbackKeys::new(TOKEN, KEY, &rid).unwrap();
        let sealed = k.encrypt(&message, random);
        prop_assert_eq!(STANDARD.decode(&sealed).unwrap().len() % 32, 0);
        prop_assert_eq!(k.decrypt(&sealed).unwrap(), message.clone());
        let (opened, carried) = k.decrypt_any_receive_id(&sealed).unwrap();
        prop_assert_eq!(opened, message);
        prop_assert_eq!(carried, rid);
    }

    #[test]
    fn verify_url_round_trips(text in "\\PC{0,200}", random in any::<[u8; 16]>(), ts in "[0-9]{10}", nonce in "[0-9]{1,10}") {
        let k = keys();
        let echostr = k.encrypt(text.as_bytes(), random);
        let sig = signature(TOKEN, &ts, &nonce, &echostr);
        prop_assert_eq!(k.verify_url(&sig, &ts, &nonce, &echostr).unwrap(), text);
    }

    #[test]
    fn percent_decode_never_panics_and_inverts_encoding(s in "\\PC{0,64}", junk in "\\PC{0,64}") {
        let _ = percent_decode(&junk);
        let encoded: String = s.bytes().map(|b| {
            if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }
        }).collect();
        prop_assert_eq!(percent_decode(&encoded), Some(s));
    }
}
