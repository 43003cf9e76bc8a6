//! The tenant keys that wrap customer data keys, derived from one configured secret.
//!
//! Held process-wide (set once by the edge from configuration, like the tracing
//! subscriber) because every path that reads the log needs it, and threading it
//! through each of them would touch every caller of the projector's API
//! (docs/adr/0024-crypto-shredding.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use super::{DataKey, PiiError};

/// Derives each tenant's key-wrapping key from the configured secret.
pub struct Keyring {
    secret: Vec<u8>,
    fingerprint: [u8; 32],
    tenants: Mutex<HashMap<String, DataKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

static INSTALLED: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);

/// Makes `secret` the process's key for personal data. Installing the same secret again
/// is a no-op; another one is refused, so no reader opens with a key the writer lacks.
pub fn install(secret: &str) -> Result<(), PiiError> {
    let keyring = Keyring::new(secret)?;
    let mut installed = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    match installed.as_ref() {
        Some(k) if k.fingerprint == keyring.fingerprint => Ok(()),
        Some(_) => Err(PiiError::KeyringMismatch),
        None => {
            *installed = Some(Arc::new(keyring));
            Ok(())
        }
    }
}

/// The installed keyring.
pub fn keyring() -> Result<Arc<Keyring>, PiiError> {
    INSTALLED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or(PiiError::NoKeyring)
}

impl Keyring {
    pub fn new(secret: &str) -> Result<Self, PiiError> {
        if secret.len() < 32 {
            return Err(PiiError::ShortSecret);
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            fingerprint: Sha256::digest(secret.as_bytes()).into(),
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// `tenant`'s key-wrapping key (HKDF-SHA256 of the secret, per tenant).
    fn tenant(&self, tenant: &str) -> DataKey {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .entry(tenant.to_string())
            .or_insert_with(|| {
                let mut okm = [0u8; 32];
                Hkdf::<Sha256>::new(Some(b"scrm customer data keys v1"), &self.secret)
                    .expand(tenant.as_bytes(), &mut okm)
                    .expect("32 bytes is a valid HKDF-SHA256 length");
                DataKey::from_bytes(&okm)
            })
            .clone()
    }

    /// A data key's bytes, wrapped for `stream` under its tenant's key.
    pub fn wrap(&self, stream: &str, key: &[u8; 32]) -> Vec<u8> {
        self.tenant(tenant_of(stream))
            .seal_bytes(stream.as_bytes(), key)
    }

    /// The data key `wrapped` holds, if this keyring wrapped it for `stream`.
    pub fn unwrap(&self, stream: &str, wrapped: &[u8]) -> Result<DataKey, PiiError> {
        let bytes = self
            .tenant(tenant_of(stream))
            .open_bytes(stream.as_bytes(), wrapped)
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| PiiError::Tampered {
                stream: stream.to_string(),
            })?;
        Ok(DataKey::from_bytes(&bytes))
    }
}

fn tenant_of(stream: &str) -> &str {
    stream.split_once(':').map_or(stream, |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_wrapped_key_when_unwrapped_by_another_tenant_or_secret_then_it_fails() {
        let ring = Keyring::new("a secret of at least thirty-two bytes!").unwrap();
        let (_, bytes) = DataKey::generate();
        let wrapped = ring.wrap("t1:wm1", &bytes);
        let key = ring.unwrap("t1:wm1", &wrapped).unwrap();
        let sealed = DataKey::from_bytes(&bytes).seal("t1:wm1", "王芳");
        assert_eq!(key.open("t1:wm1", &sealed).as_deref(), Some("王芳"));
        assert!(ring.unwrap("t2:wm1", &wrapped).is_err(), "another tenant");
        let other = Keyring::new("another secret of thirty-two bytes or more").unwrap();
        assert!(other.unwrap("t1:wm1", &wrapped).is_err(), "another secret");
        assert!(matches!(Keyring::new("short"), Err(PiiError::ShortSecret)));
    }
}
