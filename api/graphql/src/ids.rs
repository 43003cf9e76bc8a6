//! Opaque global ids and cursors. An id names a kind and a local id, never a tenant: the
//! tenant always comes from the caller, so a foreign id can only miss.

use async_graphql::ID;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::errors::ApiError;

pub fn encode(kind: &str, local: &str) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{local}")))
}

/// The local id inside a global id of `kind`.
pub fn decode(kind: &str, id: &ID) -> Result<String, ApiError> {
    let bad = || ApiError::BadInput(format!("not a {kind} id"));
    let raw = URL_SAFE_NO_PAD.decode(id.as_bytes()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (k, local) = raw.split_once(':').ok_or_else(bad)?;
    if k != kind || local.is_empty() {
        return Err(bad());
    }
    Ok(local.to_string())
}

pub fn cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

/// The parts of a cursor made by [`cursor`] with `n` parts.
pub fn uncursor(raw: &str, n: usize) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::BadInput("invalid cursor".into());
    let raw = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let parts: Vec<String> = raw.split('\u{1f}').map(str::to_string).collect();
    if parts.len() != n {
        return Err(bad());
    }
    Ok(parts)
}

pub fn time_cursor(at: DateTime<Utc>, id: &str) -> String {
    cursor(&[&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), id])
}

pub fn untime_cursor(raw: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let mut parts = uncursor(raw, 2)?;
    let id = parts.pop().unwrap_or_default();
    let at = DateTime::parse_from_rfc3339(&parts[0])
        .map_err(|_| ApiError::BadInput("invalid cursor".into()))?
        .with_timezone(&Utc);
    Ok((at, id))
}

/// `first` must be given and within 1..=100.
pub fn page_size(first: i32) -> Result<i64, ApiError> {
    if (1..=100).contains(&first) {
        Ok(i64::from(first))
    } else {
        Err(ApiError::BadInput("first must be between 1 and 100".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_another_kind() {
        let id = encode("Customer", "wm_abc");
        assert_eq!(decode("Customer", &id).unwrap(), "wm_abc");
        assert!(decode("Staff", &id).is_err());
        assert!(decode("Customer", &ID("%%%".into())).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = time_cursor(at, "wm_1");
        assert_eq!(untime_cursor(&c).unwrap(), (at, "wm_1".to_string()));
        assert!(untime_cursor("bm90LWEtY3Vyc29y").is_err());
        assert!(untime_cursor("***").is_err());
    }

    #[test]
    fn page_size_is_bounded() {
        assert!(page_size(0).is_err());
        assert!(page_size(101).is_err());
        assert_eq!(page_size(100).unwrap(), 100);
    }
}
