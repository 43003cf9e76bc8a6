//! Crypto-shredding (PIPL erasure): what identifies a customer is sealed inside their
//! events with their own data key, and erasing them destroys that key. Every reader of
//! the log (the aggregate's load, the projector, the rebuild, the as-of portrait, the
//! timeline) opens events through [`Keys::open`], so an erased customer reads the same
//! everywhere: their events keep their kinds and counts, and nothing of who they were.
//! See docs/adr/0024-crypto-shredding.md.

mod cipher;
mod keyring;
pub mod keys;
pub mod migrate;

use std::collections::{HashMap, HashSet};

use domain::pii::Personal;

pub use cipher::{is_sealed, DataKey, SEALED_PREFIX};
pub use keyring::{install, keyring, Keyring};

use crate::log::Row;

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("no key for personal data is configured (SCRM_PII_KEY)")]
    NoKeyring,
    #[error("another key for personal data is already in use in this process")]
    KeyringMismatch,
    #[error("the key for personal data must be at least 32 bytes")]
    ShortSecret,
    #[error("a sealed field of {stream} cannot be opened: wrong key or altered payload")]
    Tampered { stream: String },
    #[error("the key of {stream} was not looked up before its events were read")]
    NotFetched { stream: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The data keys of the streams a reader is about to open: a key, or none when the
/// customer was erased (or never had personal data sealed).
#[derive(Debug, Default)]
pub struct Keys {
    streams: HashMap<String, Option<DataKey>>,
    /// Streams whose key was destroyed.
    erased: HashSet<String>,
}

impl Keys {
    /// For pages with nothing sealed in them.
    pub fn none() -> Self {
        Self::default()
    }

    pub(crate) fn insert(&mut self, stream: String, key: Option<DataKey>) {
        self.streams.insert(stream, key);
    }

    pub(crate) fn insert_erased(&mut self, stream: String) {
        self.erased.insert(stream.clone());
        self.streams.insert(stream, None);
    }

    /// Whether the table has a row for `stream` (a key, or its erasure).
    pub(crate) fn knows(&self, stream: &str) -> bool {
        self.streams.get(stream).is_some_and(|k| k.is_some()) || self.erased.contains(stream)
    }

    /// The key of `stream`: `None` when erased or never looked up.
    pub fn key(&self, stream: &str) -> Option<&DataKey> {
        self.streams.get(stream).and_then(Option::as_ref)
    }

    /// Opens the sealed fields of one event of `stream`: with its key, to what was
    /// sealed; without one (erased), to nothing. Plaintext (written before sealing, or
    /// nothing personal) passes unchanged.
    pub fn open(&self, stream: &str, event: &mut impl Personal) -> Result<(), PiiError> {
        let mut fields = event.personal_fields();
        if !fields
            .iter()
            .any(|f| f.value().is_some_and(cipher::is_sealed))
        {
            return Ok(());
        }
        let key = self
            .streams
            .get(stream)
            .ok_or_else(|| PiiError::NotFetched {
                stream: stream.to_string(),
            })?;
        for f in &mut fields {
            match (f.value().filter(|v| cipher::is_sealed(v)), key) {
                (None, _) => {}
                (Some(_), None) => f.clear(),
                (Some(sealed), Some(key)) => {
                    let open = key.open(stream, sealed).ok_or_else(|| PiiError::Tampered {
                        stream: stream.to_string(),
                    })?;
                    f.map(|_| open);
                }
            }
        }
        Ok(())
    }
}

/// Seals the personal fields of `event` of `stream` with `key`.
pub fn seal(key: &DataKey, stream: &str, event: &mut impl Personal) {
    for mut f in event.personal_fields() {
        if f.value().is_some_and(|v| !cipher::is_sealed(v)) {
            f.map(|plain| key.seal(stream, plain));
        }
    }
}

/// The customer streams among `rows` whose payloads hold something sealed: the keys a
/// reader must fetch before parsing them.
pub fn streams_to_open(rows: &[Row]) -> Vec<String> {
    let mut streams: Vec<String> = rows
        .iter()
        .filter(|r| r.2 == "Customer" && r.5.contains(SEALED_PREFIX))
        .map(|r| r.3.clone())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    streams
}
