//! The metadata every stored event carries: part of the published event contract,
//! written the same way by the command service and by the bulk loader, so no reader
//! can tell a seeded event from a live one.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::values::TenantId;

pub const TENANT: &str = "tenant_id";
pub const ACTOR: &str = "actor";
pub const REQUEST_ID: &str = "request_id";
pub const OCCURRED_AT: &str = "occurred_at";
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const COMMAND_HASH: &str = "command_hash";

/// Who caused an event and in answer to which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata<'a> {
    pub tenant: &'a TenantId,
    /// `staff:<userid>`, `system:<job>`, `integration:<name>`, `operator:<id>`.
    pub actor: &'a str,
    pub request_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The idempotency key and a fingerprint of the command it was first used for.
    pub idempotency: Option<(&'a str, &'a str)>,
}

impl EventMetadata<'_> {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::with_capacity(6);
        m.insert(TENANT.to_string(), self.tenant.to_string());
        m.insert(ACTOR.to_string(), self.actor.to_string());
        m.insert(REQUEST_ID.to_string(), self.request_id.to_string());
        m.insert(
            OCCURRED_AT.to_string(),
            self.occurred_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        );
        if let Some((key, hash)) = self.idempotency {
            m.insert(IDEMPOTENCY_KEY.to_string(), key.to_string());
            m.insert(COMMAND_HASH.to_string(), hash.to_string());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn metadata_names_tenant_actor_request_and_instant() {
        let tenant = TenantId::parse("acme").unwrap();
        let m = EventMetadata {
            tenant: &tenant,
            actor: "staff:lisi",
            request_id: Uuid::nil(),
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
            idempotency: None,
        }
        .to_map();
        assert_eq!(m[TENANT], "acme");
        assert_eq!(m[ACTOR], "staff:lisi");
        assert_eq!(m[OCCURRED_AT], "2026-03-01T08:00:00Z");
        assert!(!m.contains_key(IDEMPOTENCY_KEY));
    }
}
