//! Every vector in shared/wecom/crypto/vectors.json.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use wecom::{percent_decode, signature, CallbackKeys, CryptoError};

use crate::common;

struct Vector {
    id: String,
    token: String,
    key: String,
    receive_id: String,
    msg_signature: String,
    timestamp: String,
    nonce: String,
    echostr: String,
    raw: Value,
}

fn vectors() -> Vec<Vector> {
    let path = common::shared_dir().join("crypto").join("vectors.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let list = doc["vectors"].as_array().expect("`vectors` array");
    assert!(!list.is_empty());
    list.iter()
        .map(|v| {
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("vector field {k}"))
                    .to_owned()
            };
            // The README: a real request's echostr is URL-encoded; where the source kept that
            // form, decode it as the HTTP layer must, and it must equal the decoded copy.
            let echostr = match v
                .get("echostr_url_encoded_in_source")
                .and_then(Value::as_str)
            {
                Some(encoded) => {
                    let decoded = percent_decode(encoded).expect("valid escapes");
                    assert_eq!(decoded, s("echostr"), "{}: url-decoded echostr", s("id"));
                    decoded
                }
                None => percent_decode(&s("echostr")).expect("valid escapes"),
            };
            Vector {
                id: s("id"),
                token: s("token"),
                key: s("encoding_aes_key"),
                receive_id: s("receive_id"),
                msg_signature: s("msg_signature"),
                timestamp: s("timestamp"),
                nonce: s("nonce"),
                echostr,
                raw: v.clone(),
            }
        })
        .collect()
}

fn keys(v: &Vector) -> CallbackKeys {
    CallbackKeys::new(&v.token, &v.key, &v.receive_id).unwrap()
}

#[test]
fn signatures_match() {
    for v in vectors() {
        let computed = signature(&v.token, &v.timestamp, &v.nonce, &v.echostr);
        let valid = v.raw["expect_signature_valid"].as_bool().unwrap_or(true);
        assert_eq!(computed == v.msg_signature, valid, "{}", v.id);
        let checked =
            keys(&v).verify_signature(&v.msg_signature, &v.timestamp, &v.nonce, &v.echostr);
        assert_eq!(checked.is_ok(), valid, "{}", v.id);
        // Upper-case hex is the same signature.
        let upper = v.msg_signature.to_ascii_uppercase();
        let checked = keys(&v).verify_signature(&upper, &v.timestamp, &v.nonce, &v.echostr);
        assert_eq!(checked.is_ok(), valid, "{}", v.id);
    }
}

#[test]
fn echostr_decrypts_to_the_expected_plaintext() {
    for v in vectors() {
        let expected = v.raw["derived_plaintext"].as_str().unwrap();
        let got = keys(&v)
            .verify_url(&v.msg_signature, &v.timestamp, &v.nonce, &v.echostr)
            .unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(got, expected, "{}", v.id);
    }
}

#[test]
fn ciphertext_length_matches_the_derived_layout() {
    // 16 random + 4 length + message + receive id + pad, with the pad the vector states.
    for v in vectors() {
        let ct = STANDARD.decode(&v.echostr).unwrap();
        let msg_len = v.raw["derived_msg_len"].as_u64().unwrap() as usize;
        let pad = v.raw["derived_pkcs7_pad"].as_u64().unwrap() as usize;
        let rid = v.raw["derived_receive_id"].as_str().unwrap();
        assert_eq!(rid, v.receive_id, "{}", v.id);
        assert_eq!(ct.len(), 16 + 4 + msg_len + rid.len() + pad, "{}", v.id);
        let plain = keys(&v).decrypt(&v.echostr).unwrap();
        assert_eq!(plain.len(), msg_len, "{}", v.id);
    }
}

#[test]
fn encrypting_with_the_vectors_random_prefix_reproduces_the_echostr() {
    let mut checked = 0;
    for v in vectors() {
        let Some(random) = v.raw.get("derived_random16_ascii").and_then(Value::as_str) else {
            continue;
        };
        let random: [u8; 16] = random.as_bytes().try_into().unwrap();
        let plaintext = v.raw["derived_plaintext"].as_str().unwrap();
        assert_eq!(
            keys(&v).encrypt(plaintext.as_bytes(), random),
            v.echostr,
            "{}",
            v.id
        );
        checked += 1;
    }
    assert!(checked > 0, "no vector carries its random prefix");
}

#[test]
fn wrong_receive_id_is_rejected() {
    for v in vectors() {
        let wrong = CallbackKeys::new(&v.token, &v.key, "ww0000000000000000").unwrap();
        let err = wrong
            .verify_url(&v.msg_signature, &v.timestamp, &v.nonce, &v.echostr)
            .unwrap_err();
        assert_eq!(err, CryptoError::WrongReceiveId, "{}", v.id);
        // ... and the id actually carried is the vector's.
        let (_, carried) = wrong.decrypt_any_receive_id(&v.echostr).unwrap();
        assert_eq!(carried, v.receive_id, "{}", v.id);
    }
}

#[test]
fn tampered_signature_or_parameters_are_rejected() {
    for v in vectors() {
        let k = keys(&v);
        let mut sig = v.msg_signature.clone().into_bytes();
        sig[0] = if sig[0] == b'0' { b'1' } else { b'0' };
        let sig = String::from_utf8(sig).unwrap();
        let bad = |s: &str, t: &str, n: &str, e: &str| k.verify_url(s, t, n, e).unwrap_err();
        assert_eq!(
            bad(&sig, &v.timestamp, &v.nonce, &v.echostr),
            CryptoError::BadSignature
        );
        assert_eq!(
            bad("", &v.timestamp, &v.nonce, &v.echostr),
            CryptoError::BadSignature
        );
        let sig_prefix = &v.msg_signature[..39];
        assert_eq!(
            bad(sig_prefix, &v.timestamp, &v.nonce, &v.echostr),
            CryptoError::BadSignature
        );
        let later = format!("{}1", v.timestamp);
        assert_eq!(
            bad(&v.msg_signature, &later, &v.nonce, &v.echostr),
            CryptoError::BadSignature
        );
        let other_nonce = format!("{}0", v.nonce);
        assert_eq!(
            bad(&v.msg_signature, &v.timestamp, &other_nonce, &v.echostr),
            CryptoError::BadSignature
        );
        // A token other than the configured one.
        let other = CallbackKeys::new("other-token", &v.key, &v.receive_id).unwrap();
        assert_eq!(
            other
                .verify_url(&v.msg_signature, &v.timestamp, &v.nonce, &v.echostr)
                .unwrap_err(),
            CryptoError::BadSignature,
            "{}",
            v.id
        );
        // Still URL-encoded: the signature was made over the decoded text.
        if let Some(encoded) = v
            .raw
            .get("echostr_url_encoded_in_source")
            .and_then(Value::as_str)
        {
            assert_eq!(
                bad(&v.msg_signature, &v.timestamp, &v.nonce, encoded),
                CryptoError::BadSignature
            );
        }
    }
}

#[test]
fn wrong_encoding_aes_key_fails() {
    let all = vectors();
    for v in &all {
        let expected = v.raw["derived_plaintext"].as_str().unwrap();
        // Another vector's key, and this key with one character changed.
        let mut wrong_keys: Vec<String> = all
            .iter()
            .filter(|o| o.key != v.key)
            .map(|o| o.key.clone())
            .collect();
        let mut flipped = v.key.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        wrong_keys.push(String::from_utf8(flipped).unwrap());
        for key in wrong_keys {
            let k = CallbackKeys::new(&v.token, &key, &v.receive_id).unwrap();
            let got = k.verify_url(&v.msg_signature, &v.timestamp, &v.nonce, &v.echostr);
            assert!(
                matches!(
                    got,
                    Err(CryptoError::BadPadding
                        | CryptoError::BadLength
                        | CryptoError::WrongReceiveId
                        | CryptoError::NotUtf8)
                ),
                "{}: wrong key gave {got:?}",
                v.id
            );
            assert_ne!(got.ok().as_deref(), Some(expected));
        }
    }
}

#[test]
fn truncated_or_mangled_ciphertext_fails() {
    for v in vectors() {
        let k = keys(&v);
        let ct = STANDARD.decode(&v.echostr).unwrap();
        // A whole block short: decrypts, but the padding/length/receive id no longer line up.
        let short_block = STANDARD.encode(&ct[..ct.len() - 16]);
        assert!(k.decrypt(&short_block).is_err(), "{}", v.id);
        // A byte short: not whole blocks.
        let short_byte = STANDARD.encode(&ct[..ct.len() - 1]);
        assert_eq!(
            k.decrypt(&short_byte).unwrap_err(),
            CryptoError::BadCiphertext,
            "{}",
            v.id
        );
        // Only the first block.
        let one_block = STANDARD.encode(&ct[..16]);
        assert!(k.decrypt(&one_block).is_err(), "{}", v.id);
        // Truncated base64 text.
        assert_eq!(
            k.decrypt(&v.echostr[..v.echostr.len() - 3]).unwrap_err(),
            CryptoError::BadBase64,
            "{}",
            v.id
        );
        assert_eq!(k.decrypt("").unwrap_err(), CryptoError::BadCiphertext);
        // A flipped bit in the last block breaks the padding or the receive id.
        let mut flipped = ct.clone();
        let n = flipped.len();
        flipped[n - 17] ^= 0x01;
        assert!(k.decrypt(&STANDARD.encode(&flipped)).is_err(), "{}", v.id);
    }
}
