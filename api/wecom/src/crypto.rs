//! WeCom's callback crypto (加解密方案): signature, AES-256-CBC envelope, URL verification.
//!
//! - Signature: lower-case hex SHA-1 of the byte-wise sorted concatenation of token, timestamp,
//!   nonce and the encrypted text.
//! - Key: `base64_decode(EncodingAESKey + "=")`, 32 bytes; the IV is its first 16 bytes.
//! - Plaintext: 16 random bytes, the message length as 4 big-endian bytes, the message, the
//!   receive id; then PKCS#7 padded to a multiple of **32** bytes (pads of 1..=32), which a
//!   standard 16-byte PKCS#7 unpadder rejects whenever the pad exceeds 16.
//! - Receive id: the corp id for a self-built app; the suite id for a third-party app's
//!   instruction callbacks (where customer-contact notices arrive); the authorising corp id for
//!   data callbacks; empty for an individual-entity third-party app.
//!
//! Always check the signature before decrypting ([`CallbackKeys::open`],
//! [`CallbackKeys::verify_url`] do): the padding and length checks are not constant-time, and the
//! signature check is what keeps them from serving as a padding oracle.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::notice::{Fields, ParseError};

/// Why a callback could not be authenticated or decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 base64 characters decoding to 32 bytes.
    #[error("EncodingAESKey must be 43 base64 characters that decode to 32 bytes")]
    BadKey,
    /// `msg_signature` does not match token, timestamp, nonce and encrypted text.
    #[error("msg_signature does not match")]
    BadSignature,
    /// The encrypted text is not standard, padded base64.
    #[error("encrypted text is not valid base64")]
    BadBase64,
    /// The ciphertext is empty or not a whole number of 16-byte AES blocks.
    #[error("ciphertext is empty or not a multiple of 16 bytes")]
    BadCiphertext,
    /// The PKCS#7 padding is not 1..=32 bytes all equal to the pad length (also what a wrong key
    /// usually produces).
    #[error("invalid PKCS#7 padding")]
    BadPadding,
    /// The plaintext is shorter than its 20-byte header, or its length field exceeds what follows.
    #[error("plaintext length field is inconsistent")]
    BadLength,
    /// The receive id after the message is not the configured one.
    #[error("receive id does not match")]
    WrongReceiveId,
    /// The URL-verification plaintext is not UTF-8.
    #[error("decrypted echostr is not UTF-8")]
    NotUtf8,
}

/// The three values configured on WeCom's callback page, ready for use.
#[derive(Clone)]
pub struct CallbackKeys {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for CallbackKeys {
    // Keeps the token and key out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackKeys")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

/// WeCom's keys come from Java's lenient decoder: the 43rd character often carries non-zero
/// trailing bits (both published sample keys do), which a strict decoder rejects.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

const BLOCK: usize = 16;
const PAD_MODULUS: usize = 32;
const HEADER: usize = 16 + 4;

impl CallbackKeys {
    /// `receive_id` is the id checked after each message (see the module docs for which id).
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let decoded = KEY_BASE64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = decoded.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            token: token.to_owned(),
            key,
            receive_id: receive_id.to_owned(),
        })
    }

    /// The configured receive id.
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// Checks `msg_signature` in constant time (the comparison is case-insensitive).
    pub fn verify_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<(), CryptoError> {
        let expected = signature(&self.token, timestamp, nonce, encrypted);
        let given = msg_signature.to_ascii_lowercase();
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }

    /// Decrypts `msg_encrypt` (or `echostr`) and checks the receive id. Does not check the
    /// signature: use [`CallbackKeys::open`] on untrusted input.
    pub fn decrypt(&self, encrypted_b64: &str) -> Result<Vec<u8>, CryptoError> {
        let (message, receive_id) = self.decrypt_parts(encrypted_b64)?;
        if receive_id != self.receive_id.as_bytes() {
            return Err(CryptoError::WrongReceiveId);
        }
        Ok(message)
    }

    /// Like [`CallbackKeys::decrypt`] but returns the receive id instead of checking it, for
    /// endpoints that serve several receive ids with one key (a third-party app's data callbacks
    /// carry each authorising corp's id). The caller must check it.
    pub fn decrypt_any_receive_id(
        &self,
        encrypted_b64: &str,
    ) -> Result<(Vec<u8>, String), CryptoError> {
        let (message, receive_id) = self.decrypt_parts(encrypted_b64)?;
        let receive_id = String::from_utf8(receive_id).map_err(|_| CryptoError::WrongReceiveId)?;
        Ok((message, receive_id))
    }

    /// Signature check, then decryption: what a POST handler calls with the query's
    /// `msg_signature`, `timestamp`, `nonce` and the body's [`outer_encrypt`].
    pub fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted_b64: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        self.verify_signature(msg_signature, timestamp, nonce, encrypted_b64)?;
        self.decrypt(encrypted_b64)
    }

    /// The GET URL verification: returns the plaintext to send back as the whole response body
    /// (no quotes, BOM or newline).
    ///
    /// `echostr` must already be URL-decoded: it is base64, so it arrives with `%2B`, `%2F` and
    /// `%3D` in the query string. Decode `%XX` escapes only and keep a literal `+` as `+` (see
    /// [`percent_decode`]); a form decoder that turns `+` into a space breaks the signature.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        let plain = self.open(msg_signature, timestamp, nonce, echostr)?;
        String::from_utf8(plain).map_err(|_| CryptoError::NotUtf8)
    }

    /// Encrypts `message` with the configured receive id; `random16` is the random prefix, passed
    /// in so that this stays pure. Used for encrypted replies and for tests.
    ///
    /// # Panics
    ///
    /// If `message` is 4 GiB or longer, which its 4-byte length field cannot express.
    pub fn encrypt(&self, message: &[u8], random16: [u8; 16]) -> String {
        let len = u32::try_from(message.len()).expect("WeCom messages are shorter than 4 GiB");
        let rid = self.receive_id.as_bytes();
        let body = HEADER + message.len() + rid.len();
        let pad = PAD_MODULUS - body % PAD_MODULUS;
        let mut buf = Vec::with_capacity(body + pad);
        buf.extend_from_slice(&random16);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(rid);
        // pad is 1..=32, so the cast is exact.
        buf.resize(body + pad, pad as u8);
        self.cbc_encrypt(&mut buf);
        STANDARD.encode(buf)
    }

    /// The encrypted passive-reply body (`<xml><Encrypt>..<MsgSignature>..`). WeCom expects this
    /// only where a reply message makes sense; customer-contact notices take a plain `success`.
    pub fn reply_xml(
        &self,
        message: &[u8],
        random16: [u8; 16],
        timestamp: &str,
        nonce: &str,
    ) -> String {
        let encrypted = self.encrypt(message, random16);
        let sig = signature(&self.token, timestamp, nonce, &encrypted);
        format!(
            "<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>\
             <MsgSignature><![CDATA[{sig}]]></MsgSignature>\
             <TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
            xml_escape(timestamp),
            xml_escape(nonce),
        )
    }

    /// Returns (message, receive id) after the padding and length checks.
    fn decrypt_parts(&self, encrypted_b64: &str) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let mut buf = STANDARD
            .decode(encrypted_b64.as_bytes())
            .map_err(|_| CryptoError::BadBase64)?;
        if buf.is_empty() || buf.len() % BLOCK != 0 {
            return Err(CryptoError::BadCiphertext);
        }
        self.cbc_decrypt(&mut buf);

        let pad = usize::from(*buf.last().ok_or(CryptoError::BadCiphertext)?);
        if pad == 0 || pad > PAD_MODULUS || pad > buf.len() {
            return Err(CryptoError::BadPadding);
        }
        let content_len = buf.len() - pad;
        if buf[content_len..].iter().any(|&b| usize::from(b) != pad) {
            return Err(CryptoError::BadPadding);
        }
        let content = &buf[..content_len];
        let Some((header, rest)) = content.split_first_chunk::<HEADER>() else {
            return Err(CryptoError::BadLength);
        };
        let msg_len = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
        let msg_len = usize::try_from(msg_len).map_err(|_| CryptoError::BadLength)?;
        if msg_len > rest.len() {
            return Err(CryptoError::BadLength);
        }
        let (message, receive_id) = rest.split_at(msg_len);
        Ok((message.to_vec(), receive_id.to_vec()))
    }

    fn iv(&self) -> [u8; BLOCK] {
        let mut iv = [0u8; BLOCK];
        iv.copy_from_slice(&self.key[..BLOCK]);
        iv
    }

    /// CBC by hand over the AES block cipher: padding is WeCom's own, so the mode is all we need.
    fn cbc_encrypt(&self, buf: &mut [u8]) {
        let cipher = Aes256::new(&self.key.into());
        let mut prev = self.iv();
        for block in buf.chunks_exact_mut(BLOCK) {
            block.iter_mut().zip(prev).for_each(|(b, p)| *b ^= p);
            cipher.encrypt_block(block.into());
            prev.copy_from_slice(block);
        }
    }

    fn cbc_decrypt(&self, buf: &mut [u8]) {
        let cipher = Aes256::new(&self.key.into());
        let mut prev = self.iv();
        for block in buf.chunks_exact_mut(BLOCK) {
            let mut this = [0u8; BLOCK];
            this.copy_from_slice(block);
            cipher.decrypt_block(block.into());
            block.iter_mut().zip(prev).for_each(|(b, p)| *b ^= p);
            prev = this;
        }
    }
}

/// `msg_signature`: lower-case hex SHA-1 of the four strings sorted byte-wise and concatenated.
pub fn signature(token: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypted];
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The `Encrypt` field of an encrypted POST body, XML
/// (`<xml><ToUserName/><AgentID/><Encrypt><![CDATA[..]]></Encrypt></xml>`) or JSON
/// (`{"tousername": .., "encrypt": .., "agentid": ..}`); field names in any case.
pub fn outer_encrypt(body: &[u8]) -> Result<String, ParseError> {
    Fields::parse(body)?.required("Encrypt", "encrypted POST body")
}

/// Decodes `%XX` escapes (RFC 3986), leaving `+` as `+`. `None` on a malformed escape or when
/// the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_digit(*bytes.get(i + 1)?)?;
            let lo = hex_digit(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The official sample's key, token and receive id.
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const RID: &str = "wx5823bf96d3bd56c7";

    fn keys() -> CallbackKeys {
        CallbackKeys::new("QDG6eK", KEY, RID).unwrap()
    }

    /// Encrypts an arbitrary plaintext, so tests can build what WeCom never would.
    fn seal_raw(keys: &CallbackKeys, mut plain: Vec<u8>) -> String {
        assert_eq!(plain.len() % BLOCK, 0);
        keys.cbc_encrypt(&mut plain);
        STANDARD.encode(plain)
    }

    fn plaintext(len_field: u32, message: &[u8], rid: &[u8], pad: usize, pad_byte: u8) -> Vec<u8> {
        let mut p = vec![7u8; 16];
        p.extend_from_slice(&len_field.to_be_bytes());
        p.extend_from_slice(message);
        p.extend_from_slice(rid);
        p.extend(std::iter::repeat_n(pad_byte, pad));
        p
    }

    #[test]
    fn key_with_nonzero_trailing_bits_is_accepted() {
        assert!(
            STANDARD.decode(format!("{KEY}=")).is_err(),
            "strict base64 rejects it"
        );
        assert!(CallbackKeys::new("t", KEY, RID).is_ok());
    }

    #[test]
    fn key_of_wrong_length_or_alphabet_is_rejected() {
        assert_eq!(
            CallbackKeys::new("t", &KEY[..42], RID).unwrap_err(),
            CryptoError::BadKey
        );
        let with_bad_char = format!("{}!", &KEY[..42]);
        assert_eq!(
            CallbackKeys::new("t", &with_bad_char, RID).unwrap_err(),
            CryptoError::BadKey
        );
        assert_eq!(
            CallbackKeys::new("t", "", RID).unwrap_err(),
            CryptoError::BadKey
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let shown = format!("{:?}", keys());
        assert!(!shown.contains("QDG6eK"));
        assert!(shown.contains(RID));
    }

    #[test]
    fn signature_sorts_its_inputs() {
        let a = signature("b", "a", "d", "c");
        let b = signature("d", "c", "b", "a");
        assert_eq!(a, b);
        assert_eq!(a, hex::encode(Sha1::digest(b"abcd")));
    }

    #[test]
    fn a_pad_of_exactly_32_is_accepted() {
        let k = keys();
        // 16 + 4 + 26 + 18 = 64: a whole multiple of 32, so the pad is a full 32 bytes.
        let msg = [b'm'; 26];
        let sealed = seal_raw(&k, plaintext(26, &msg, RID.as_bytes(), 32, 32));
        assert_eq!(k.decrypt(&sealed).unwrap(), msg);
    }

    #[test]
    fn pads_outside_1_to_32_are_rejected() {
        let k = keys();
        // 16 + 4 + 10 + 18 = 48; a 16-byte pad of 0 and a 48-byte pad of 48 are both invalid.
        let zero = seal_raw(&k, plaintext(10, &[1; 10], RID.as_bytes(), 16, 0));
        assert_eq!(k.decrypt(&zero).unwrap_err(), CryptoError::BadPadding);
        let big = seal_raw(&k, plaintext(10, &[1; 10], RID.as_bytes(), 48, 48));
        assert_eq!(k.decrypt(&big).unwrap_err(), CryptoError::BadPadding);
    }

    #[test]
    fn unequal_pad_bytes_are_rejected() {
        let k = keys();
        let mut p = plaintext(10, &[1; 10], RID.as_bytes(), 16, 16);
        let n = p.len();
        p[n - 5] = 15;
        assert_eq!(
            k.decrypt(&seal_raw(&k, p)).unwrap_err(),
            CryptoError::BadPadding
        );
    }

    #[test]
    fn length_field_beyond_the_plaintext_is_rejected() {
        let k = keys();
        let p = plaintext(1000, &[1; 10], RID.as_bytes(), 16, 16);
        assert_eq!(
            k.decrypt(&seal_raw(&k, p)).unwrap_err(),
            CryptoError::BadLength
        );
        let huge = plaintext(u32::MAX, &[1; 10], RID.as_bytes(), 16, 16);
        assert_eq!(
            k.decrypt(&seal_raw(&k, huge)).unwrap_err(),
            CryptoError::BadLength
        );
    }

    #[test]
    fn plaintext_shorter_than_its_header_is_rejected() {
        let k = keys();
        // 16 bytes of content, 16 of pad: no room for the length field.
        let mut p = vec![0u8; 16];
        p.extend([16u8; 16]);
        assert_eq!(
            k.decrypt(&seal_raw(&k, p)).unwrap_err(),
            CryptoError::BadLength
        );
    }

    #[test]
    fn receive_id_is_compared_whole() {
        let k = keys();
        let prefix = seal_raw(&k, plaintext(10, &[1; 10], &RID.as_bytes()[..17], 1, 1));
        assert_eq!(k.decrypt(&prefix).unwrap_err(), CryptoError::WrongReceiveId);
        let (msg, rid) = k.decrypt_any_receive_id(&prefix).unwrap();
        assert_eq!((msg, rid.as_str()), (vec![1; 10], &RID[..17]));
    }

    #[test]
    fn ciphertext_shape_errors() {
        let k = keys();
        assert_eq!(k.decrypt("").unwrap_err(), CryptoError::BadCiphertext);
        assert_eq!(k.decrypt("AAAA").unwrap_err(), CryptoError::BadCiphertext);
        assert_eq!(
            k.decrypt("not base64!").unwrap_err(),
            CryptoError::BadBase64
        );
        assert_eq!(k.decrypt("AAA").unwrap_err(), CryptoError::BadBase64);
    }

    #[test]
    fn percent_decode_handles_escapes_and_keeps_plus() {
        assert_eq!(
            percent_decode("a%2Fb%2bc+d%3D").as_deref(),
            Some("a/b+c+d=")
        );
        assert_eq!(percent_decode("%E4%BC%81").as_deref(), Some("企"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn reply_xml_is_a_signed_envelope() {
        let k = keys();
        let xml = k.reply_xml(b"<xml>hi</xml>", [3; 16], "1409659589", "n<1>");
        let encrypted = outer_encrypt(xml.as_bytes()).unwrap();
        let sig = signature("QDG6eK", "1409659589", "n<1>", &encrypted);
        assert!(xml.contains(&sig));
        assert!(xml.contains("<Nonce>n&lt;1&gt;</Nonce>"));
        assert_eq!(
            k.open(&sig, "1409659589", "n<1>", &encrypted).unwrap(),
            b"<xml>hi</xml>"
        );
    }
}
