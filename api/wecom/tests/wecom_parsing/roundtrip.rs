//! Encrypt/decrypt round trips and the outer POST body, end to end as the endpoint uses them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use wecom::{outer_encrypt, signature, CallbackKeys, CryptoError, Notice, NoticeKind, ParseError};

use crate::common::{self, keys, CORP, KEY, TOKEN};

#[test]
fn every_pad_length_from_1_to_32_round_trips() {
    let k = keys();
    // 16 + 4 + 18 (receive id) = 38 bytes of overhead; message lengths 0..64 cover every pad.
    let mut pads_seen = std::collections::BTreeSet::new();
    for len in 0..64usize {
        let message: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let sealed = k.encrypt(&message, [len as u8; 16]);
        let ct_len = STANDARD.decode(&sealed).unwrap().len();
        assert_eq!(ct_len % 32, 0, "WeCom pads to 32");
        let pad = ct_len - (38 + len);
        assert!((1..=32).contains(&pad));
        pads_seen.insert(pad);
        assert_eq!(k.decrypt(&sealed).unwrap(), message, "len {len}");
    }
    assert_eq!(pads_seen.len(), 32);
}

#[test]
fn a_message_padded_by_exactly_32_round_trips() {
    let k = keys();
    let message = [b'x'; 26]; // 38 + 26 = 64
    let sealed = k.encrypt(&message, *b"0123456789abcdef");
    let ct = STANDARD.decode(&sealed).unwrap();
    assert_eq!(ct.len(), 96);
    assert_eq!(k.decrypt(&sealed).unwrap(), message);
}

#[test]
fn empty_message_and_empty_receive_id_round_trip() {
    let k = CallbackKeys::new(TOKEN, KEY, "").unwrap();
    let sealed = k.encrypt(b"", [0; 16]);
    assert_eq!(k.decrypt(&sealed).unwrap(), b"");
    assert_eq!(
        keys().decrypt(&sealed).unwrap_err(),
        CryptoError::WrongReceiveId
    );
}

#[test]
fn verify_url_round_trips_a_freshly_made_echostr() {
    let k = keys();
    let echostr = k.encrypt(b"7346245273423470134", *b"ABCDEFGHIJKLMNOP");
    let sig = signature(TOKEN, "1700000000", "42", &echostr);
    assert_eq!(
        k.verify_url(&sig, "1700000000", "42", &echostr).unwrap(),
        "7346245273423470134"
    );
    let not_utf8 = k.encrypt(&[0xff, 0xfe], [1; 16]);
    let sig = signature(TOKEN, "1700000000", "42", &not_utf8);
    assert_eq!(
        k.verify_url(&sig, "1700000000", "42", &not_utf8)
            .unwrap_err(),
        CryptoError::NotUtf8
    );
}

/// The POST path: outer body -> signature -> decrypt -> notice, for every shared callback, in
/// both the XML and the JSON outer form.
#[test]
fn post_bodies_open_into_the_shared_notices() {
    let k = keys();
    let dir = common::shared_dir().join("callbacks");
    for (i, name) in common::file_names(&dir).iter().enumerate() {
        let plain = std::fs::read(dir.join(name)).unwrap();
        let encrypted = k.encrypt(&plain, [i as u8; 16]);
        let (ts, nonce) = ("1409659589", "263014780");
        let sig = signature(TOKEN, ts, nonce, &encrypted);
        let xml_body = format!(
            "<xml>\n\t<ToUserName><![CDATA[{CORP}]]></ToUserName>\n\t<AgentID><![CDATA[218]]></AgentID>\n\t<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n</xml>"
        );
        let json_body =
            format!(r#"{{"tousername": "{CORP}", "encrypt": "{encrypted}", "agentid": 218}}"#);
        for body in [xml_body, json_body] {
            let outer = outer_encrypt(body.as_bytes()).unwrap();
            assert_eq!(outer, encrypted);
            let opened = k.open(&sig, ts, nonce, &outer).unwrap();
            assert_eq!(opened, plain, "{name}");
            let notice = Notice::parse(&opened).unwrap();
            assert!(!matches!(notice.kind, NoticeKind::Unknown { .. }), "{name}");
        }
        // Redelivery: new random prefix, new ciphertext, same dedup key.
        let again = k.encrypt(&plain, [0xee; 16]);
        assert_ne!(again, encrypted);
        let reopened = k.decrypt(&again).unwrap();
        assert_eq!(Notice::dedup_key(&reopened), Notice::dedup_key(&plain));
    }
}

#[test]
fn outer_body_errors() {
    assert_eq!(
        outer_encrypt(b"<xml><ToUserName>x</ToUserName><AgentID>1</AgentID></xml>").unwrap_err(),
        ParseError::MissingField {
            field: "Encrypt",
            context: "encrypted POST body".into()
        }
    );
    assert!(matches!(
        outer_encrypt(b"<xml><Encrypt>abc</xml>").unwrap_err(),
        ParseError::Xml(_)
    ));
    assert!(matches!(
        outer_encrypt(br#"{"encrypt": 5"#).unwrap_err(),
        ParseError::Json(_)
    ));
    assert!(matches!(
        outer_encrypt(br#"{"encrypt": ["a"]}"#).unwrap_err(),
        ParseError::InvalidField {
            field: "Encrypt",
            ..
        }
    ));
    assert_eq!(outer_encrypt(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(outer_encrypt(br#"{"Encrypt": " abc "}"#).unwrap(), "abc");
    assert_eq!(outer_encrypt(br#"{"ENCRYPT": "abc"}"#).unwrap(), "abc");
}
