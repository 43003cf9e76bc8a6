//! AES-256-GCM, the sealed-text format and key wrapping.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

/// Starts every sealed text: `pii1:` and base64 of nonce, ciphertext and tag.
pub const SEALED_PREFIX: &str = "pii1:";
const NONCE: usize = 12;

pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

/// One customer's data key.
#[derive(Clone)]
pub struct DataKey(Box<Aes256Gcm>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(
            bytes,
        ))))
    }

    /// A fresh random key and its bytes (to wrap and store).
    pub fn generate() -> (Self, [u8; 32]) {
        let key = Aes256Gcm::generate_key(OsRng);
        let bytes: [u8; 32] = key.into();
        (Self::from_bytes(&bytes), bytes)
    }

    /// `plain`, sealed for `stream` (bound as associated data: a sealed text moved to
    /// another stream does not open).
    pub fn seal(&self, stream: &str, plain: &str) -> String {
        let sealed = self.seal_bytes(stream.as_bytes(), plain.as_bytes());
        format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(sealed))
    }

    pub fn open(&self, stream: &str, sealed: &str) -> Option<String> {
        let raw = STANDARD_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        String::from_utf8(self.open_bytes(stream.as_bytes(), &raw)?).ok()
    }

    pub(crate) fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.0
                .encrypt(&nonce, Payload { msg: plain, aad })
                .expect("AES-GCM encrypts any input shorter than 64 GiB"),
        );
        out
    }

    pub(crate) fn open_bytes(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_sealed_text_when_opened_with_its_key_and_stream_then_it_is_the_original() {
        let (key, _) = DataKey::generate();
        let sealed = key.seal("t1:wm1", "王芳");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("王芳"));
        assert_eq!(key.open("t1:wm1", &sealed).as_deref(), Some("王芳"));
    }

    #[test]
    fn given_a_sealed_text_when_opened_elsewhere_then_it_does_not_open() {
        let (key, _) = DataKey::generate();
        let (other, _) = DataKey::generate();
        let sealed = key.seal("t1:wm1", "13800000000");
        assert_eq!(key.open("t1:wm2", &sealed), None, "moved to another stream");
        assert_eq!(other.open("t1:wm1", &sealed), None, "another key");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push('A');
        assert_eq!(key.open("t1:wm1", &altered), None, "altered");
        assert_ne!(
            key.seal("t1:wm1", "13800000000"),
            sealed,
            "a fresh nonce each time"
        );
    }
}
